#!/usr/bin/env bash
# The GPU check of issue 16 (item 8), under 5 minutes on one GPU; no installs, nothing downloaded.
#
#   bash benchmarks/device_check.sh        # from the repository root, on a machine with a GPU
#   bash benchmarks/device_check.sh --cpu-dry-run [--out-dir DIR]
#                                          # every code path on a CPU, tiny sizes: <part>-gpu-dry-run.json
#
# Parts, each in its own process under its own time limit (seconds, overridable):
#   sweep       train throughput of a wide sweep (mlp width 4096, 256 runs) as a fraction of the
#               GPU's dense peak              → benchmarks/results/train-gpu.json
#   primitives  dense vs gather / routed vs their Pallas kernels at s = 4096, density 1/64
#               (values and gradients checked against dense first)
#                                             → benchmarks/results/primitives-gpu.json
# Arguments are passed on to bench_gpu.py. Exits 3 at once if jax sees no GPU (unless --cpu-dry-run); otherwise runs every part and exits non-zero if any
# part failed or ran out of time (the parts that finished have still written their JSON).
# See benchmarks/bench_gpu.py for what is measured and counted.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python}"
SWEEP_TIMEOUT="${SWEEP_TIMEOUT:-170}"
PRIMITIVES_TIMEOUT="${PRIMITIVES_TIMEOUT:-100}"

dry_run=0
for arg in "$@"; do [ "$arg" = "--cpu-dry-run" ] && dry_run=1; done

if [ "$dry_run" -eq 0 ] && ! timeout 60 "$PYTHON" -c '
import sys, jax
try:
    gpus = jax.devices("gpu")
except RuntimeError:
    gpus = []
print("device_check:", jax.__version__, gpus or "no GPU")
sys.exit(0 if gpus else 1)'; then
    echo "device_check: no GPU visible to jax; nothing measured" >&2
    exit 3
fi
[ "$dry_run" -eq 1 ] || ! command -v nvidia-smi >/dev/null || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

failed=0
run_part() {  # part, time limit in seconds, arguments for bench_gpu.py
    local started=$SECONDS status
    timeout -k 10 "$2" "$PYTHON" benchmarks/bench_gpu.py --part "$1" "${@:3}"
    status=$?
    if [ "$status" -eq 124 ]; then
        echo "device_check: part $1 ran past its limit of $2 s" >&2
    elif [ "$status" -ne 0 ]; then
        echo "device_check: part $1 failed (exit $status)" >&2
    fi
    echo "device_check: part $1 took $((SECONDS - started)) s"
    [ "$status" -eq 0 ] || failed=1
}
run_part sweep "$SWEEP_TIMEOUT" "$@"
run_part primitives "$PRIMITIVES_TIMEOUT" "$@"
[ "$dry_run" -eq 1 ] || ls -l benchmarks/results/*-gpu.json
exit "$failed"
