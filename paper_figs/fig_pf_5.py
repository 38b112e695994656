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

The runs train outside the results store (`sparselearn.figures.traced_runs`, which records the
per-unit weights and can start from given weights); the small tables behind the full-size
figure are kept in paper_figs/data/pf-5*.parquet and redrawn without training (delete them to
retrain).

Full size: `sparselearn figs PF-5` — (n, k) = (40, 4), 10 seeds, 30k steps per arm: 2 min 33 s
wall on the 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs. Steps to test
error 0 (of 10 seeds): full network 10/10, median 2.75k; rewound top-5 tickets 6/10, median
6.6k; random 5 units rewound 3/10 (17k); fresh width-5 networks 3/10 (15k). Of the 50 ticket units, 30
started connected to one relevant input and 1 to two (random units: 6 and 0), so the
winning units are those whose sparse start already touched the support. We first ran the paper's (50, 5): the width-100
parent reached 0 error in 6/10 seeds within 30k steps (7/10 below 10⁻³), but no width-5
network did, tickets included, so the figure uses the (40, 4) fallback of SCIENCE.md §7.
Smoke: `sparselearn figs PF-5 --smoke` (seconds; n = 10, k = 2, width 32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import error_vs_steps
from sparselearn.plotting.style import PALETTE, panels

ID = "PF-5"
TICKET = 5  # units kept
FRESH_STREAM = 0x66726573  # fold_in label of the fresh width-5 initialisation

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


def experiments(smoke: bool):
    if smoke:
        return [figures.config(FULL, experiment="pf_5_smoke", target={"n": 10, "k": 2}, learner={"width": 32},
                               train={**figures.SMOKE["train"], "eps": 0.0}, data={"test_m": 256},
                               sweep={"seeds": 2})]
    return [figures.config(FULL)]


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """The runs and curves of every arm, trained outside the store (`figures.traced_runs`)."""
    del store
    runs, curves = train(experiments(smoke)[0])
    return {"runs": runs, "curves": curves}


def unit_norms(params, params0):
    """Every hidden unit's weight: |a_j|·‖w_j‖₂, output weight times the norm of its incoming
    weights, (width,)."""
    del params0
    return {"norm": jnp.abs(params[1]["w"]) * jnp.linalg.norm(params[0]["w"], axis=0)}


def subnetwork(parent_net, child_net, n: int):
    """init hook: the parent's initial weights restricted to the units hp["units"] (TICKET,),
    or, where hp["fresh"] is set, the child network's own initialisation."""
    def init(key, hp):
        first, last = parent_net.init_params(key, n)
        idx = hp["units"]
        sub = [{"w": first["w"][:, idx], "b": first["b"][idx]}, {"w": last["w"][idx], "b": last["b"]}]
        own = child_net.init_params(jax.random.fold_in(key, FRESH_STREAM), n)
        return jax.tree.map(lambda a, b: jnp.where(hp["fresh"], a, b), own, sub)
    return init


def _frames(arm: str, exp, seeds, out, relevant=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, curves) of one arm; `relevant`: per seed, the kept units' relevant-input counts."""
    ids = [f"{arm}-{s}" for s in seeds]
    runs = pd.DataFrame({"run_id": ids, "arm": ARMS[arm], "seed": seeds, "status": "ok",
                         "n": exp.target.n, "k": exp.target.k, "width": exp.learner.width,
                         "test_error": out["test_error"],
                         "steps_to_eps": np.where(out["steps_to_eps"] >= 0, out["steps_to_eps"], np.nan),
                         "relevant_inputs": pd.Series(relevant if relevant is not None else [None] * len(seeds),
                                                      dtype=object)})
    steps = out["steps"]
    curves = pd.DataFrame({"run_id": np.repeat(ids, len(steps)), "step": np.tile(steps, len(ids)),
                           "test_error": out["curve_test_error"].ravel(),
                           "train_loss": out["curve_train_loss"].ravel()})
    return runs, curves


def train(exp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train the parent, pick tickets and random subnetworks, retrain them; (runs, curves)."""
    seeds = list(exp.sweep.seeds)
    n, width = exp.target.n, exp.learner.width
    parent = figures.traced_runs(exp, {"seed": seeds}, observe=unit_norms)
    final = parent["trace_norm"][:, -1, :]                                   # (R, width)
    top = np.argsort(-final, axis=1)[:, :TICKET]
    rand = np.stack([np.random.default_rng(s).choice(width, TICKET, replace=False) for s in seeds])
    child = figures.config(exp, learner={"width": TICKET})
    # the three width-5 arms in one program: rewound top units, rewound random units, fresh
    out = figures.traced_runs(child, {"seed": seeds * 3, "units": np.concatenate([top, rand, rand]),
                             "fresh": np.repeat([False, False, True], len(seeds))},
                     init=subnetwork(exp.learner, child.learner, n))
    arms = [{k: v[i * len(seeds):(i + 1) * len(seeds)] if k != "steps" else v for k, v in out.items()}
            for i in range(3)]
    relevant = {arm: [_relevant(exp, s, u).tolist() for s, u in zip(seeds, units)]
                for arm, units in (("ticket", top), ("random", rand))}
    parts = [_frames("parent", exp, seeds, parent)] + [
        _frames(arm, child, seeds, part, relevant.get(arm)) for arm, part in zip(("ticket", "random", "fresh"), arms)]
    runs = pd.concat([p[0] for p in parts], ignore_index=True)
    curves = pd.concat([p[1] for p in parts], ignore_index=True)
    return runs, curves


def _relevant(exp, seed: int, units: np.ndarray) -> np.ndarray:
    """For each kept unit: how many of the parity's k relevant inputs it started connected to."""
    support = np.asarray(figures.teacher_params(exp, seed)["support"])
    w0 = np.asarray(figures.initial_params(exp, seed)[0]["w"])
    return (w0[support][:, units] != 0).sum(axis=0)


def draw(results):
    runs, curves = results.runs, results.curves
    fig, (left, right) = panels(1, 2, 9.5, 3.5, gridspec_kw={"width_ratios": [1.6, 1]})
    error_vs_steps(runs, curves, ax=left, logx=True, series="arm", title="test error (fresh inputs)")
    r = runs.iloc[0]
    counts = {}
    for arm in ("ticket", "random"):
        kept = runs[runs["arm"] == ARMS[arm]]["relevant_inputs"]
        values = np.concatenate([np.asarray(v, dtype=int) for v in kept])
        counts[arm] = np.bincount(values, minlength=3)[:3] / max(len(values), 1)
    x = np.arange(3)
    order = sorted(ARMS.values())  # the colour order of the left panel's series
    for i, arm in enumerate(("ticket", "random")):
        right.bar(x + (i - 0.5) * 0.38, counts[arm], width=0.36, color=PALETTE[order.index(ARMS[arm])],
                  label=ARMS[arm])
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
