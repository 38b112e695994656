"""One look for every figure: readable fonts, a colour-blind-safe palette, PNG (+ PDF)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

# No backend is chosen here: in Jupyter figures show inline, the CLI picks a file backend itself.

# Okabe–Ito colours, distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

RC = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE), "pdf.fonttype": 42, "ps.fonttype": 42,
    "savefig.bbox": "tight", "savefig.dpi": 150, "figure.dpi": 100,
}


@contextlib.contextmanager
def styled():
    """The house style for the block. Unlike `plt.rc_context` it restores only the style's own
    keys: the first figure may load the backend (in Jupyter the inline one, which turns on
    interactive mode), and that must outlive the block or later cells show no figure."""
    old = {k: matplotlib.rcParams[k] for k in RC}
    matplotlib.rcParams.update(RC)
    try:
        yield
    finally:
        matplotlib.rcParams.update(old)


def figure(width: float = 4.5, height: float = 3.2):
    """A new (fig, ax) drawn with the house style."""
    with styled():
        fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def panels(rows: int = 1, cols: int = 2, width: float | None = None, height: float | None = None, **kw):
    """A new (fig, axes) grid in the house style; axes is a 2-D array when rows > 1, else 1-D."""
    width = width or 4.0 * cols
    height = height or 3.0 * rows
    with styled():
        fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, **kw)
    return fig, (axes if rows > 1 else axes[0])


def figure_paths(path: str | Path, pdf: bool = True) -> list[Path]:
    """The files `save(fig, path, pdf)` writes: `path` with .png (and .pdf) in place of a .png or
    .pdf suffix, else appended (`lr0.1` → `lr0.1.png`). ConfigError for another image suffix
    (`fig.svg`), which these files would not honour."""
    from matplotlib.backend_bases import FigureCanvasBase

    from sparselearn.errors import ConfigError

    path = Path(path)
    suffixes = (".png", ".pdf") if pdf else (".png",)
    suffix = path.suffix.lower()
    if suffix in (".png", ".pdf"):
        path = path.with_suffix("")
    elif suffix[1:] in FigureCanvasBase.get_supported_filetypes():
        written = " and ".join(str(path.with_suffix(s)) for s in suffixes)
        raise ConfigError(f"{path}: figures are written as {written}, not {suffix}; name the file without "
                          f"{suffix} (or with .png)")
    return [path.with_name(path.name + s) for s in suffixes]


def save(fig, path: str | Path, pdf: bool = True) -> list[Path]:
    """Write `path` as .png and, with `pdf`, .pdf (`figure_paths`); returns the paths, the PNG first.

    Both files are cropped to one tight box, laid out once: `savefig.bbox = "tight"` would
    draw the figure twice per file, to find the box and then to write it."""
    out = figure_paths(path, pdf)
    out[0].parent.mkdir(parents=True, exist_ok=True)
    with styled():
        fig.draw_without_rendering()  # runs the layout engine, if any, so the box is final
        box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
        for p in out:
            fig.savefig(p, bbox_inches=box)
    plt.close(fig)
    return out
