"""Paper figures: one `fig_<id>.py` per figure (README's figure list). Each declares its experiments and
a draw function over their stored results (the contract is in `sparselearn.figures`);
`sparselearn figs ID|--all [--smoke]` runs, resumes and draws them into paper_figs/out/<id>.png
and .pdf, keeping the full-size tables in paper_figs/data/; `sparselearn figs exponents` writes
the exponent table of the scaling studies in experiments/.
"""

#: figures drawn first by `figs --all` (the cheapest); the rest follow in file-name order
FIRST = ("ADKM-D3", "ADKM-D2", "ADKM-D1", "HP-1L", "HP-1R", "HP-15", "HP-16")
