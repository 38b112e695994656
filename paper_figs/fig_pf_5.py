"""PF-5: lottery tickets — the 5 strongest neurons of a trained sparse-init network, rewound to
their initial weights, learn the parity alone; random 5-neuron subnetworks do not.

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
network in the same run, with the same keys as the stored parent, and keeps its 5 strongest
units; `random` keeps 5 drawn from the run's initialisation key) and record their first layer
and the teacher's influence per input, from which the right panel counts the relevant inputs of
each kept unit at step 0. The small tables behind the full-size figure are kept in
paper_figs/data/pf-5*.parquet and redrawn without training (delete them to retrain).

Full size: `sparselearn figs PF-5` — (n, k) = (40, 4), 10 seeds, 30k steps per arm: 4 min 22 s
wall on the 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs (load average
about 12). Steps to test error 0 (of 10 seeds): full network 10/10, median 2.75k; rewound top-5
tickets 7/10, median 8.25k; random 5 units rewound 2/10 (14.75k); fresh width-5 networks 4/10
(10.5k). Of the 50 ticket units, 30 started connected to one relevant input and 1 to two (random
units: 12 and 0), so the winning units are those whose sparse start already touched the
support. (The tables made before the arms were stored, with the same parent and the same kept
units, gave tickets 6/10 at median 6.6k: the same runs compiled as another program round
differently, and over 30k steps the tickets' step counts moved by up to 750 steps and one seed
crossed to 0 error at 21.75k; the random and fresh arms then drew other units and
initialisations, 3/10 each.) We first ran the paper's (50, 5): the width-100 parent reached 0
error in 6/10 seeds within 30k steps (7/10 below 10⁻³), but no width-5 network did, tickets
included, so the figure uses the (40, 4) fallback of SCIENCE.md §7.
Smoke: `sparselearn figs PF-5 --smoke` (seconds; n = 10, k = 2, width 32).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import error_vs_steps
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
        "sweep": {"seeds": 10}}

ARMS = {"parent": "full network, trained",
        "ticket": f"top-{TICKET} units, rewound",
        "random": f"random {TICKET} units, rewound",
        "fresh": f"fresh width-{TICKET} network"}
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


def draw(results):
    runs, curves = results.runs, results.curves
    fig, (left, right) = panels(1, 2, 9.5, 3.5, gridspec_kw={"width_ratios": [1.6, 1]})
    error_vs_steps(runs, curves, ax=left, logx=True, series="arm", title="test error (fresh inputs)",
                   colors=COLORS)
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
    right.legend(frameon=False, fontsize=8)
    fig.suptitle(f"lottery tickets: online ({int(r['n'])}, {int(r['k'])})-parity, s = 2 sparse init, "
                 f"width {int(runs['width'].max())} → {TICKET} units", fontsize=10)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
