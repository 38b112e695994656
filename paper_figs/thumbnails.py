"""Small PNG copies of the drawn figures for the README's figure list.

    python paper_figs/thumbnails.py        paper_figs/out/<id>.png → paper_figs/thumbs/<id>.png

Run it after `sparselearn figs --all` at full size; the thumbnails are committed (paper_figs/out/
is not), so the README shows every figure without anyone regenerating it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from sparselearn import figures

HERE = Path(__file__).resolve().parent
WIDTH = 480  # pixels


def thumbnail(source: Path, target: Path, width: int = WIDTH) -> Path:
    """`source` scaled to `width` pixels wide (aspect kept), saved as an optimised PNG."""
    with Image.open(source) as image:
        height = round(image.height * width / image.width)
        small = image.convert("RGB").resize((width, height), Image.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    small.convert("P", palette=Image.ADAPTIVE, colors=96).save(target, optimize=True)
    return target


def main(out: Path = HERE / "out", thumbs: Path = HERE / "thumbs") -> list[Path]:
    """A thumbnail for every figure drawn in `out`; figures not drawn yet are listed as missing."""
    made, missing = [], []
    for fig_id in figures.discover(HERE.parent):
        source = out / f"{fig_id.lower()}.png"
        if source.exists():
            made.append(thumbnail(source, thumbs / source.name))
        else:
            missing.append(fig_id)
    if missing:
        print(f"not drawn yet (run `sparselearn figs ID`): {', '.join(missing)}", file=sys.stderr)
    return made


if __name__ == "__main__":
    for path in main():
        print(path)
