#!/usr/bin/env bash
# The GPU check of issue 16 (item 8), under 5 minutes on one GPU; no installs, nothing downloaded.
#
#   bash benchmarks/device_check.sh        # from the repository root, on a machine with a GPU
#   bash benchmarks/device_check.sh --part primitives   # one part only (sweep or primitives)
#   bash benchmarks/device_check.sh --cpu-dry-run [--out-dir DIR]
#                                          # every code path on a CPU, tiny sizes: <part>-gpu-dry-run.json
#
# Parts, each in its own process under its own time limit (seconds, overridable):
#   sweep       train throughput of a wide sweep (mlp width 4096, 256 runs) as a fraction of the
#               GPU's dense peak              → benchmarks/results/train-gpu.json
#   primitives  dense vs gather / routed vs their Pallas kernels at s = 4096, density 1/64
#               (values and gradients checked against dense first)
#                                             → benchmarks/results/primitives-gpu.json
# The limits (GPU_PROBE_TIMEOUT 35 s and 5 s more to stop after SIGTERM, nvidia-smi 8 s and 2 s
# more, SWEEP_TIMEOUT 130 s and PRIMITIVES_TIMEOUT 90 s, each with 10 s more to stop after SIGTERM)
# add to 290 s at most. The interpreter is $PYTHON if set, else python, else python3.
# Other arguments are passed on to bench_gpu.py. Exits 127 if there is no interpreter, 3 at once if
# jax sees no GPU (unless --cpu-dry-run); otherwise runs the parts and exits non-zero if any part
# failed or ran out of time (the parts that finished have still written their JSON).
# See benchmarks/bench_gpu.py for what is measured and counted.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    command -v python >/dev/null || PYTHON=python3
fi
GPU_PROBE_TIMEOUT="${GPU_PROBE_TIMEOUT:-35}"
SWEEP_TIMEOUT="${SWEEP_TIMEOUT:-130}"
PRIMITIVES_TIMEOUT="${PRIMITIVES_TIMEOUT:-90}"

dry_run=0
parts=()
passed=()   # the arguments for bench_gpu.py, without --part: each process gets its own
while [ "$#" -gt 0 ]; do
    case "$1" in
        --cpu-dry-run) dry_run=1; passed+=("$1") ;;
        --part) [ "$#" -ge 2 ] || { echo "device_check: --part needs a value (sweep or primitives)" >&2; exit 2; }
                parts+=("$2"); shift ;;
        --part=*) parts+=("${1#--part=}") ;;
        *) passed+=("$1") ;;
    esac
    shift
done
for part in "${parts[@]+"${parts[@]}"}"; do
    case "$part" in
        sweep|primitives) ;;
        all) parts=() ; break ;;
        *) echo "device_check: unknown part '$part' (sweep, primitives or all)" >&2; exit 2 ;;
    esac
done
[ "${#parts[@]}" -gt 0 ] || parts=(sweep primitives)
# without this check a missing interpreter would read as "no GPU visible" below
command -v "$PYTHON" >/dev/null || { echo "device_check: Python interpreter not found ($PYTHON)" >&2; exit 127; }

if [ "$dry_run" -eq 0 ] && ! timeout -k 5 "$GPU_PROBE_TIMEOUT" "$PYTHON" -c '
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
[ "$dry_run" -eq 1 ] || ! command -v nvidia-smi >/dev/null ||
    timeout -k 2 8 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

failed=0
run_part() {  # part, time limit in seconds
    local started=$SECONDS status took
    timeout -k 10 "$2" "$PYTHON" benchmarks/bench_gpu.py --part "$1" "${passed[@]+"${passed[@]}"}"
    status=$?
    took=$((SECONDS - started))
    if [ "$status" -eq 124 ] || { [ "$status" -eq 137 ] && [ "$took" -ge "$2" ]; }; then
        # 124: stopped by SIGTERM at the limit; 137: still running 10 s later, killed
        echo "device_check: part $1 ran past its limit of $2 s (exit $status)" >&2
    elif [ "$status" -ne 0 ]; then
        echo "device_check: part $1 failed (exit $status)" >&2
    fi
    echo "device_check: part $1 took $took s"
    [ "$status" -eq 0 ] || failed=1
}
for part in sweep primitives; do   # each named part once, in this order
    case " ${parts[*]} " in *" $part "*) ;; *) continue ;; esac
    case "$part" in
        sweep) run_part sweep "$SWEEP_TIMEOUT" ;;
        primitives) run_part primitives "$PRIMITIVES_TIMEOUT" ;;
    esac
done
[ "$dry_run" -eq 1 ] || ls -l benchmarks/results/*-gpu.json
exit "$failed"
