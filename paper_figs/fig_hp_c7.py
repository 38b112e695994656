"""HP-C7: quadratic-activation networks learn parities end to end up to degree 2^(L−1), and no further.

Barak et al. 2022, App. C.7: with activation z², the population gradient of any single layer of
these networks is zero at a symmetric start, so layerwise training is stuck, yet end-to-end SGD
learns: depth L = 3 with hidden widths (2, 1) in 20k steps and L = 4 with (10, 10, 1) in 50k steps,
10 seeds; it fails when k > 2^(L−1). Here: `polymlp` with biases and a trained linear readout (its
output is a polynomial of degree 2^(L−1), so a k-parity with k > 2^(L−1) has zero correlation with
every network of the class), n = 10 (our choice: the paper's n is not in the text we have), hinge
loss, online batches of 32, lr 0.01 (L = 3) and 0.003 (L = 4; 0.01 diverges on some seeds),
Xavier-uniform weights. One line per k: median accuracy on 2048 fresh inputs over 10 seeds and the
interquartile band; the legend gives how many seeds reach 100% (on those 2048, not the paper's
2¹³ = 8192: of the 71 runs that reach it, one evaluation earlier the median is at 3.5% test error
and 2 runs at ≤ 2 errors in 2048).
Bottom row, the layerwise arm (`polymlp` `trained_layers`): one layer of weights and the readout
trained, the other layers held at their initial values, at the largest k that end-to-end training
learns (L = 3: k = 3, 4; L = 4: k = 8), same steps and learning rates.

Full size: `sparselearn figs HP-C7` — L = 3 with k ∈ {2, 3, 4, 5} for 20k steps and L = 4 with
k ∈ {4, 8, 9} for 50k steps, 10 seeds each (7 compiled groups, 70 runs): 338 s wall (L = 3: 132 s,
L = 4: 166 s of training) on the 2-core AMD EPYC Zen 4 sandbox (jax 0.10.2 CPU) while other jobs
kept the load average near 16; table kept in paper_figs/data/hp-c7*.parquet (+ .yaml), so the
figure redraws without training (delete those files to retrain).
Measured: every run with k ≤ 2^(L−1) reaches 100% test accuracy (L = 3: k = 2, 3, 4, 10/10 seeds
each, median t_c 0.75k, 3.4k, 1.1k steps, slowest 17.3k; L = 4: k = 4, 8, 10/10 each, median t_c
4.0k and 8.0k, slowest 24k), and every run with k > 2^(L−1) stays at chance (k = 5 at L = 3 and
k = 9 at L = 4: final accuracy 0.48–0.52, 0/10). No end-to-end run diverged.
Layerwise arm (100 runs, 487 s wall at load average ≈ 12, merged into the kept tables): training
a deeper layer with the readout, or the readout alone, fails as the paper says (0/10 for every such
arm; best final accuracy 0.73, layer 1 + readout at L = 4; one run of that arm, seed 3, diverged
within its first 500 steps and counts as accuracy 0 in its band: the kept table stores its
error as 1; a rerun stores NaN, its outputs being NaN, and leaves it out of the band). But
training the first layer with the readout, the deeper layers frozen at their random init,
learns: L = 3: k = 3 5/10, k = 4 6/10 (median t_c 2.3k and 3.6k); L = 4: k = 8 10/10 (median
t_c 22.8k, ≈ 3× end to end). The paper's
argument (every single layer has zero population gradient) needs a symmetric start; Xavier
weights break the symmetry, so the first layer alone already sees a gradient.
Smoke: `sparselearn figs HP-C7 --smoke` (seconds; 200 steps).
"""

from __future__ import annotations

from sparselearn import figures
from sparselearn.plotting.curves import grid_frame
from sparselearn.plotting.style import PALETTE, panels

ID = "HP-C7"
LAYER = "_layer"   # experiment-name infix of the layerwise arm: hp_c7_L3_layer0 trains layer 0 and the readout

#: the parity orders of the layerwise arm per depth: the largest that end-to-end training learns
ALONE_KS = {3: [3, 4], 4: [8]}


def net(depth: int, hidden: list, lr: float, steps: int, every: int, seeds: int, ks: list, smoke: bool = False,
        layer: int | None = None):
    """The depth-L network of hidden widths `hidden`, its grid over the parity order k; with
    `layer`, only that layer of weights (0 … L − 1, L − 1 the readout) and the readout are
    trained, the others stay at their initial values (the layerwise arm). The readout always
    trains: with it frozen (offset c = 0, fixed sign of a) the output a·z² + c never changes
    sign, so accuracy would sit at the class balance whatever the layer learns."""
    arm = "" if layer is None else f"{LAYER}{layer}"
    return figures.config({
        "experiment": f"hp_c7_L{depth}{arm}" + ("_smoke" if smoke else ""),
        "target": {"name": "sparse_parity", "n": 10, "k": 2},
        "learner": {"name": "polymlp", "hidden": hidden, "power": 2, "readout": "trained", "init": "xavier",
                    "bias": True, **({} if layer is None else {"trained_layers": sorted({layer, depth - 1})})},
        "train": {"optimizer": "sgd", "lr": lr, "batch": 32, "steps": steps, "loss": "hinge", "eval_every": every,
                  "eps": 0.0},
        "data": {"online": True, "test_m": 2048},
        "sweep": {"seeds": seeds, "grid": {"target.k": ks}}})


def experiments(smoke: bool):
    if smoke:
        return [net(3, [2, 1], 0.01, 200, 50, 2, [2], smoke=True),
                net(4, [10, 10, 1], 0.003, 200, 50, 2, [2], smoke=True)] + \
            [net(3, [2, 1], 0.01, 200, 50, 2, [2], smoke=True, layer=0)]
    end_to_end = [net(3, [2, 1], 0.01, 20000, 250, 10, [2, 3, 4, 5]),
                  net(4, [10, 10, 1], 0.003, 50000, 500, 10, [4, 8, 9])]
    alone = [net(3, [2, 1], 0.01, 20000, 250, 10, ALONE_KS[3], layer=j) for j in range(3)]
    alone += [net(4, [10, 10, 1], 0.003, 50000, 500, 10, ALONE_KS[4], layer=j) for j in range(4)]
    return end_to_end + alone


def trained_layer(experiment: str) -> int | None:
    """The layer trained (with the readout) in a run of `experiment` (None: end to end)."""
    if LAYER not in experiment:
        return None
    return int(experiment.split(LAYER)[1].split("_")[0])


def _curves(ax, part, curves, label, ncol: int = 2) -> None:
    """Median accuracy and interquartile band over seeds per series of the runs `part` (the
    series: `label(row) -> str` of each run, its colour in order)."""
    part = part.assign(series=[label(r) for r in part.itertuples()])
    merged = curves[curves["step"] > 0].merge(part[["run_id", "series", "seed"]], on="run_id")
    for i, (series, one) in enumerate(merged.groupby("series", sort=True)):
        acc = 1 - one.pivot_table(index="step", columns="seed", values="test_error")
        q = acc.quantile([0.25, 0.5, 0.75], axis=1).T
        finals = part[part["series"] == series]["test_error"]
        color = PALETTE[i % len(PALETTE)]
        ax.plot(acc.index, q[0.5], "-", color=color, lw=1.5,
                label=f"{series}: {int((finals == 0).sum())}/{len(finals)} reach 100%")
        ax.fill_between(acc.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training step")
    ax.set_ylim(0.4, 1.02)
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    if len(merged):
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=ncol, fontsize=7.5)


def draw(results):
    runs, curves = results.runs, results.curves
    runs = grid_frame(runs[runs["status"] != "failed"])
    runs = runs.assign(layer=runs["experiment"].map(trained_layer))
    depths = sorted(runs["depth"].dropna().astype(int).unique())
    alone = runs["layer"].notna().any()
    fig, axes = panels(2 if alone else 1, len(depths), 5.0 * len(depths), 4.2 * (2 if alone else 1), sharey=True)
    rows = axes if alone else [axes]
    for col, depth in enumerate(depths):
        part = runs[runs["depth"] == depth]
        hidden = "(2, 1)" if depth == 3 else "(10, 10, 1)" if depth == 4 else ""
        degree = 2 ** (depth - 1)
        ax = rows[0][col]
        _curves(ax, part[part["layer"].isna()], curves,
                lambda r: f"k = {r.k} ({'≤' if r.k <= degree else '>'} {degree})")
        ax.set_title(f"end to end: L = {depth}, hidden widths {hidden}, degree {degree}", fontsize=9)
        if alone:
            ax = rows[1][col]
            _curves(ax, part[part["layer"].notna()], curves,
                    lambda r: f"k = {r.k}, " + ("readout alone" if r.layer == depth - 1
                                                else f"layer {int(r.layer)} + readout"), ncol=1)
            ax.set_title(f"layerwise: one layer and the readout trained, the others at init: L = {depth}", fontsize=9)
    for row in rows:
        row[0].set_ylabel("test accuracy (fresh inputs)")
    r = runs.iloc[0]
    fig.suptitle(f"quadratic-activation networks on k-parities of n = {int(r['n'])} bits "
                 "(median and interquartile band over seeds)", fontsize=10, y=1.01)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
