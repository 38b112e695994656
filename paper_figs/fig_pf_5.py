"""PF-5: lottery tickets — the 5 strongest neurons of a trained sparse-init network, rewound to
their initial weights and trained alone, learn the parity exactly in 24 of 50 seeds, random
5-neuron subnetworks rewound the same way in 8 (fresh width-5 networks: 15). Most runs of every
width-5 arm that do not reach error 0 stall near 1/16 (median final test error 0.060 tickets,
0.065 random, 0.063 fresh), so the arms differ in exact recovery, not in the error they end at.

Edelman et al. 2023, Fig. 5: a width-100 ReLU MLP with the s = 2 sparse initialisation (each
unit starts connected to 2 random inputs; all weights then train, `connectivity: free`) learns
an online k-sparse parity by SGD (hinge, batch 32, lr 0.1). After training, keep the 5 units with
the largest |a_j|·‖w_j‖₂ (output weight times incoming weight norm — our reading of "weight
norm"), rewind them to their initial weights (input weights, bias and output weight) and retrain
that width-5 network on the same stream. Controls: 5 units chosen at random from the same
initialisation, rewound the same way, and a freshly initialised width-5 network. Left: test
error vs step, median and IQR over seeds; right: how many of the k relevant inputs each kept
unit was connected to at initialisation.

Each arm is an experiment of its own, stored like any other: the rewound arms are the parent's
config with `train.rewind: 5` (see the `rewind` training option; `rewind_pick: largest` trains the full
network in the same run, with the same keys, as the stored parent, and keeps its 5 strongest
units; `random` keeps 5 drawn from the run's initialisation key) and record their first layer
and the teacher's influence per input, from which the right panel counts the relevant inputs of
each kept unit at step 0. The middle panel shows the share of seeds at test error 0 by step t per
arm, with two two-sided tests of the tickets against each width-5 control
(`sparselearn.plotting.significance.compare_reach`): Fisher's exact test on reached / not reached
within the cap, and the log-rank test on the steps to error 0, unreached seeds censored at the
cap. `train.stop_at_eps` is not used: it would pick the tickets' units where the parent first
reaches error 0 rather than after the full 30k steps, and a group stops only once all its runs
have, which the width-5 arms never do. The small tables behind the full-size figure are kept in
paper_figs/data/pf-5*.parquet and redrawn without training (delete them to retrain).

Full size: `sparselearn figs PF-5` — (n, k) = (40, 4), 50 seeds, 30k steps per arm: 499 s
wall on one core (`taskset -c 1`) of a 2-core Intel Xeon, jax 0.10.2, the other core busy with
other jobs (load average 5–7). Seeds at test error 0 within 30k steps (median step of those that
reach): full network 50/50 (2.75k); rewound top-5 tickets 24/50 (7.75k); random 5 units rewound
8/50 (13.25k); fresh width-5 networks 15/50 (14.5k). Tickets vs random: Fisher p = 1.1×10⁻³,
log-rank p = 2.5×10⁻⁴ — separated; tickets vs fresh: Fisher p = 0.10, log-rank p = 0.022 (the
tickets reach 0 error sooner, but not significantly more often within 30k steps). Of the 250
ticket units, 131 started connected to one relevant input and 6 to two (random units: 47 and 0),
so the winning units are those whose sparse start already touched the support. Seeds 0–9 repeat
the earlier 10-seed table's runs (then tickets 7/10, random 2/10, fresh 4/10: Fisher p = 0.07 for
tickets vs random) compiled as a program over 50 runs instead of 10; rounding differs, and over
30k steps a few step counts moved by up to 6.5k and two seeds crossed the cap (ticket seed 3,
random seed 6), so single seeds near the edge are fragile and the counts, not the seeds, are the
result. We first ran the paper's (50, 5): the width-100 parent reached 0 error in 6/10 seeds
within 30k steps (7/10 below 10⁻³), but no width-5 network did, tickets included, so the figure
uses the (40, 4) parity instead.
Smoke: `sparselearn figs PF-5 --smoke` (seconds; n = 10, k = 2, width 32).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import error_vs_steps
from sparselearn.plotting.significance import compare_reach
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.store import trace_array

ID = "PF-5"
TICKET = 5  # units kept

FULL = {"experiment": "pf_5",
        "target": {"name": "sparse_parity", "n": 40, "k": 4},
        "learner": {"name": "mlp", "width": 100, "depth": 2, "init": "sparse", "fan_in": 2, "connectivity": "free"},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 30000, "loss": "hinge", "eval_every": 250,
                  "eps": 0.0},
        "data": {"online": True, "test_m": 8192},
        "sweep": {"seeds": 50}}

ARMS = {"parent": "full network, trained",
        "ticket": f"top-{TICKET} units, rewound",
        "random": f"random {TICKET} units, rewound",
        "fresh": f"fresh width-{TICKET} network"}
#: only drawn: left out of what the kept tables record (`figures.made_from`)
DRAWING_CONSTANTS = ("COLORS",)
#: one clearly distinct colour per arm, in both panels
COLORS = {ARMS["parent"]: PALETTE[7], ARMS["ticket"]: PALETTE[3], ARMS["random"]: PALETTE[0],
          ARMS["fresh"]: PALETTE[2]}

#: what each arm changes in the parent's config; the rewound arms record their first layer (at
#: step 0: the kept units' initial weights) and the teacher's influence per input
CHANGES = {"parent": {},
           "ticket": {"train": {"rewind": TICKET, "rewind_pick": "largest", "record": ["first_layer", "influence"]}},
           "random": {"train": {"rewind": TICKET, "rewind_pick": "random", "record": ["first_layer", "influence"]}},
           "fresh": {"learner": {"width": TICKET}}}


def experiments(smoke: bool):
    """The four arms, by name: the parent, and three width-5 networks trained on the same stream."""
    base = figures.config(FULL, experiment="pf_5_smoke", target={"n": 10, "k": 2}, learner={"width": 32},
                          train={**figures.SMOKE["train"], "eps": 0.0}, data={"test_m": 256},
                          sweep={"seeds": 2}) if smoke else figures.config(FULL)
    out = {}
    for arm, change in CHANGES.items():
        name = base.experiment if arm == "parent" else base.experiment.replace("pf_5", f"pf_5_{arm}")
        out[arm] = figures.config(base, experiment=name, **change)
    return out


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """The runs and curves of every arm from the store; each run's `arm`, and for the rewound
    arms `relevant_inputs`: per kept unit, how many of the parity's relevant inputs it started
    connected to (from the traces)."""
    declared = experiments(smoke)
    runs, curves, traces = figures.sweep(declared, store, traces=True)
    runs["arm"] = runs["experiment"].map({exp.experiment: ARMS[arm] for arm, exp in declared.items()})
    relevant = {}
    for rid in runs["run_id"][runs["run_id"].isin(traces["run_id"])]:
        w0 = trace_array(traces, "first_layer", [rid])[2][0, 0]                     # (n, TICKET) at step 0
        support = trace_array(traces, "influence", [rid])[2][0, 0] > 0.5
        relevant[rid] = (w0[support] != 0).sum(axis=0).tolist()
    runs["relevant_inputs"] = pd.Series([relevant.get(rid) for rid in runs["run_id"]], dtype=object)
    return {"runs": runs, "curves": curves}


def reach_tests(runs: pd.DataFrame) -> dict[str, object]:
    """Tickets against each width-5 control (`random`, `fresh`): Fisher's exact test on reached /
    not reached and the log-rank test on the steps to test error 0, censored at the step cap."""
    cap = int(runs["steps"].max())
    steps = {arm: runs.loc[runs["arm"] == ARMS[arm], "steps_to_eps"].astype(float).to_numpy() for arm in ARMS}
    return {other: compare_reach(steps["ticket"], steps[other], cap) for other in ("random", "fresh")}


def draw(results):
    runs, curves = results.runs, results.curves
    fig, (left, middle, right) = panels(1, 3, 14.0, 3.8, gridspec_kw={"width_ratios": [1.5, 1.2, 1]})
    error_vs_steps(runs, curves, ax=left, logx=True, series="arm",
                   title="test error (fresh inputs; median, IQR band)", colors=COLORS)
    left.get_legend().remove()   # one legend for both, in the middle panel's free space
    cap = int(runs["steps"].max())
    for arm, name in ARMS.items():
        t = np.sort(runs.loc[runs["arm"] == name, "steps_to_eps"].dropna().to_numpy(float))
        share = np.arange(1, t.size + 1) / (runs["arm"] == name).sum()
        middle.step(np.r_[0, t, cap], np.r_[0, share, share[-1] if t.size else 0], where="post",
                    color=COLORS[name], label=name)
    middle.legend(frameon=False, fontsize=8, loc="center right", bbox_to_anchor=(1.0, 0.74))
    middle.set_xlim(0, cap)
    middle.set_ylim(-0.02, 1.02)
    middle.set_xlabel("training step t")
    middle.set_ylabel("share of seeds at test error 0 by t")
    tests = reach_tests(runs)
    middle.set_title("\n".join(["seeds reaching test error 0 (two-sided tests)"] +
                               [tests[o].label("tickets", o) for o in tests]), fontsize=7.5)
    r = runs.iloc[0]
    counts = {}
    for arm in ("ticket", "random"):
        kept = runs[runs["arm"] == ARMS[arm]]["relevant_inputs"]
        values = np.concatenate([np.asarray(v, dtype=int) for v in kept])
        counts[arm] = np.bincount(values, minlength=3)[:3] / max(len(values), 1)
    x = np.arange(3)
    for i, arm in enumerate(("ticket", "random")):
        right.bar(x + (i - 0.5) * 0.38, counts[arm], width=0.36, color=COLORS[ARMS[arm]], label=ARMS[arm])
    right.set_xticks(x, ["0", "1", "2"])
    right.set_xlabel("relevant inputs among a unit's 2 initial ones")
    right.set_ylabel("fraction of kept units")
    right.set_title("what the kept units started with")
    right.legend(frameon=False, fontsize=8, loc="upper right")
    fig.suptitle(f"lottery tickets: online ({int(r['n'])}, {int(r['k'])})-parity, s = 2 sparse init, "
                 f"width {int(runs['width'].max())} → {TICKET} units, {runs.groupby('arm').size().min()} seeds per arm",
                 fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
