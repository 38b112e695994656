"""MOE-2: a dense ReLU teacher distilled into top-k mixtures of experts, Gaussian vs dictionary-sparse inputs.

Relative error vs active experts, router rank and atoms per input.

The secret-mixtures-of-experts claim (Boix-Adserà, Secret mixtures of experts inside your LLM, arXiv 2512.18452): a dense MLP is well
approximated by a sparsely activated mixture of experts when its inputs are dictionary-sparse
(x = D z, few atoms per input: the structure sparse autoencoders find in activations), and not
when they are Gaussian. The teacher is a fixed dense one-hidden-layer ReLU net, the `moe` target
with a single expert of s = 64 units on n = 32 inputs (Gaussian weights, unit output variance
under its input law). The student is the `moe` learner: E = 16 experts of 4 ReLU units each (64
units in all, the teacher's width), a rank-r router and top-k softmax gates, trained by Adam on
the square loss against fresh teacher samples every step (online distillation, so the test error
is approximation, not generalisation). Inputs: N(0, I_n), or `dictionary` with N = 4n = 128
unit-norm atoms and `nonzeros` codes of variance n/nonzeros per input (same E‖x‖² = n). The y
axis is the test MSE on 4096 fresh inputs; the teacher has variance 1 under its law (estimated on
2^14 draws), so this is the relative error ‖f_MoE − f‖² / ‖f‖² up to that estimate.
Panels: (a) vs active experts k at r = 8; (b) vs router rank r at k = 1; (c) vs non-zeros per
input at k = 1, r = 8, the Gaussian value as a band. Median and IQR over seeds; dots are seeds.

Full size: `sparselearn figs MOE-2` — 20 configurations × 3 seeds, 4000 Adam steps (lr 3e-3,
batch 128): 647 s wall (263 s CPU) on a 2-core Intel Xeon CPU, jax 0.10.2, shared with other
jobs (load average ≈ 10 during the run); tables kept in paper_figs/data/moe-2*.parquet.
Median relative error (3 seeds) at r = 8, k = 1 / 2 / 4 / 16 active experts of 16:
    Gaussian                      0.110  0.071  0.047  0.014
    dictionary, 1 atom per input  0.0091 0.0049 0.0032 0.0017
    dictionary, 2 atoms per input 0.092  0.044  0.029  0.015
at k = 1 vs router rank r = 1 / 2 / 8 / 32: Gaussian 0.144 0.108 0.110 0.108; dictionary (1 atom)
0.051 0.020 0.0091 0.011; at k = 1, r = 8 vs atoms per input 1 / 2 / 4 / 8: 0.0091 0.092 0.098 0.090.
What the runs show: (1) with one atom per input (x on the union of N lines) a single active expert
of 4 units approximates the width-64 teacher to 0.9%, 12× better than on Gaussian inputs (11%), and
a rank-8 router suffices (r = 1 is 5.6× worse, r = 2 2.2×; r = 32 no better than 8; a rank-1
router scores expert e as s(x)·g_e, so at k = 1 it only ever picks the experts of the largest and
the smallest g_e: r = 1 measures a 2-expert, 8-unit student); on Gaussian
inputs the router rank does not matter beyond r = 2, which fits a teacher with no region where few
experts suffice. (2) The advantage is the sparsest law's alone: with 2, 4 or 8 atoms per input the
k = 1 error is 0.09–0.10, at the Gaussian level; at k = 2–4 two atoms per input still gain 1.6×, and
at k = 16 two-atom and Gaussian inputs agree (0.015, 0.014). (3) Part of (1) is that the teacher
restricted to N lines is an easier function: even with every expert active (k = 16, a dense softmax
mixture of 64 units, the teacher's width) its error is 8× below the Gaussian one; the cost of going
from 16 active experts to 1 is 8× on Gaussian, 5.3× on one-atom and 6.4× on two-atom inputs. So a
few experts suffice on very sparse codes, as the theory says [A], but in this synthetic setting the
effect fades already at 2 atoms per input of N = 4n = 128; SAE codes of real activations have tens
of atoms out of many thousands, which this 2-core figure does not reach.
Smoke: `sparselearn figs MOE-2 --smoke` (n = 8, a width-8 teacher, 4 experts of 2 units, k = 1).
"""

from __future__ import annotations

from matplotlib.ticker import NullLocator

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels

ID = "MOE-2"

FULL = {"n": 32, "s": 64, "experts": 16, "expert_width": 4, "steps": 4000, "batch": 128, "lr": 0.003,
        "eval_every": 1000, "test_m": 4096, "seeds": 3, "r": 8, "ks": (1, 2, 4, 16), "rs": (1, 2, 8, 32),
        "nonzeros": (1, 2, 4, 8), "curves": (("gaussian", None), ("dictionary", 1), ("dictionary", 2))}
SMOKE = {"n": 8, "s": 8, "experts": 4, "expert_width": 2, "steps": 100, "batch": 32, "lr": 0.003,
         "eval_every": 50, "test_m": 256, "seeds": 2, "r": 2, "ks": (1,), "rs": (2,),
         "nonzeros": (1,), "curves": (("gaussian", None), ("dictionary", 1))}


def law(inputs: str, nonzeros: int | None) -> str:
    """The legend name of an input law."""
    return "Gaussian N(0, I)" if inputs == "gaussian" else f"dictionary, {nonzeros} atom{'s' * (nonzeros > 1)}/input"


def points(size: dict) -> list[tuple[str, int | None, int, int]]:
    """The (inputs, nonzeros, k, r) of every configuration, each once: every curve of (a) over k at
    the main r, the Gaussian and the sparsest dictionary law over r at k = 1 (b), and the
    dictionary law over nonzeros at k = 1 and the main r (c)."""
    wanted = [(inputs, nz, k, size["r"]) for inputs, nz in size["curves"] for k in size["ks"]]
    wanted += [(inputs, nz, 1, r) for inputs, nz in size["curves"][:2] for r in size["rs"]]
    wanted += [("dictionary", nz, 1, size["r"]) for nz in size["nonzeros"]]
    return list(dict.fromkeys(wanted))


def experiments(smoke: bool):
    """(inputs, nonzeros, k, r) → config: one compiled group each (k and r are shapes)."""
    size = SMOKE if smoke else FULL
    out = {}
    for inputs, nz, k, r in points(size):
        target = {"name": "moe", "n": size["n"], "experts": 1, "expert_width": size["s"], "r": 1, "top": 1,
                  "inputs": inputs}
        if inputs == "dictionary":
            target["nonzeros"] = nz
        out[inputs, nz, k, r] = figures.config({
            "experiment": f"moe_2{'_smoke' if smoke else ''}_{inputs}{nz or ''}_k{k}_r{r}",
            "target": target,
            "learner": {"name": "moe", "experts": size["experts"], "expert_width": size["expert_width"],
                        "top": k, "r": r},
            "train": {"optimizer": "adam", "lr": size["lr"], "batch": size["batch"], "steps": size["steps"],
                      "loss": "square", "eval_every": size["eval_every"]},
            "data": {"online": True, "test_m": size["test_m"]},
            "sweep": {"seeds": size["seeds"]}})
    return out


def table(runs):
    """One row per run: inputs, nonzeros, k, r (from the label), law (its legend name) and the
    relative error."""
    ok = runs[runs["status"] == "ok"]
    label = ok["label"]
    nonzeros = [int(nz) if inputs == "dictionary" else None for inputs, nz in zip(label.str[0], label.str[1])]
    return ok.assign(inputs=label.str[0], nonzeros=nonzeros, k=label.str[2], r=label.str[3],
                     law=[law(i, nz) for i, nz in zip(label.str[0], nonzeros)], relative_error=ok["test_error"])


def _series(ax, part, x: str, color: str, name: str) -> None:
    if part.empty:
        return
    q = part.groupby(x)["relative_error"].quantile([0.25, 0.5, 0.75]).unstack()
    ax.plot(q.index, q[0.5], "o-", ms=3, color=color, label=name)
    ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
    ax.plot(part[x], part["relative_error"], ".", ms=2, color=color, alpha=0.5)


def draw(results):
    runs = table(results.runs)
    size = SMOKE if runs["experiment"].str.contains("_smoke").any() else FULL
    main_r, k1 = size["r"], runs["k"] == 1
    laws = [law(i, nz) for i, nz in size["curves"]]
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(laws)}
    fig, axes = panels(1, 3, width=12.0, height=3.4, sharey=True)
    for name in laws:
        mine = runs["law"] == name
        _series(axes[0], runs[mine & (runs["r"] == main_r)], "k", colour[name], name)
        if runs[mine & k1]["r"].nunique() > 1 or len(size["rs"]) == 1:
            _series(axes[1], runs[mine & k1], "r", colour[name], name)
    sparse = runs[(runs["inputs"] == "dictionary") & k1 & (runs["r"] == main_r)]
    _series(axes[2], sparse, "nonzeros", PALETTE[len(laws) % len(PALETTE)], f"dictionary, N = {4 * size['n']} atoms")
    gauss = runs[(runs["inputs"] == "gaussian") & k1 & (runs["r"] == main_r)]["relative_error"]
    if len(gauss):
        axes[2].axhspan(gauss.quantile(0.25), gauss.quantile(0.75), color=colour[laws[0]], alpha=0.15, lw=0)
        axes[2].axhline(gauss.median(), color=colour[laws[0]], ls="--", lw=1, label=laws[0])
    titles = (f"(a) vs active experts k of {size['experts']} (rank-{main_r} router)",
              f"(b) vs router rank r (k = 1, n = {size['n']})",
              f"(c) vs atoms per input (k = 1, r = {main_r})")
    xlabels = ("active experts k (top-k)", "router rank r", "non-zero codes per input")
    for ax, title, xlabel, ticks in zip(axes, titles, xlabels, (size["ks"], size["rs"], size["nonzeros"])):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.legend(frameon=False, fontsize=7)
    axes[0].set_ylabel("relative error ‖f_MoE − f‖² / ‖f‖²")
    fig.suptitle(f"dense ReLU teacher (s = {size['s']}, n = {size['n']}) distilled into a top-k MoE of "
                 f"{size['experts']} experts × {size['expert_width']} units\n"
                 f"median, band: IQR over {runs['seed'].nunique()} seeds; dots: single seeds", fontsize=9)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
