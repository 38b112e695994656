"""Sample-complexity search, third review: an estimate at the smallest value the search may try
is flagged as an upper bound, the Python API checks its settings, and the command's exit status
and notes follow what failed and what diverged (GF(2): fitted in milliseconds)."""

from __future__ import annotations

import math

import pytest

from sparselearn import config
from sparselearn.cli import main
from sparselearn.errors import ConfigError
from sparselearn.sweeps.search import sample_complexity

GF2 = """
experiment: g
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: gf2}
train: {loss: square, eps: 0.05}
data: {m: 16, test_m: 64}
sweep: {seeds: 4}
"""


def test_success_at_the_floor_is_an_upper_bound_not_an_estimate(tmp_path):
    exp = config.loads(GF2)
    floor = sample_complexity(exp, delta=0.2, out=tmp_path, start=16, min_value=16, progress=False)
    row = floor.table().iloc[0]
    assert row["estimate"] == 16 and row["below"] is None and bool(row["floored"])
    est = floor.estimates().iloc[0]
    assert est["m_star"] == 16 and bool(est["floored"]) and not bool(est["censored"])
    free = sample_complexity(exp, delta=0.2, out=tmp_path, start=16, progress=False)   # may halve below 16
    row = free.table().iloc[0]
    assert row["estimate"] < 16 and row["below"] is not None and not bool(row["floored"])
    assert not free.estimates()["floored"].any()


@pytest.mark.parametrize("setting, key", [({"confidence": 1.5}, "confidence"), ({"confidence": math.nan}, "confidence"),
                                          ({"confidence": 0.0}, "confidence"), ({"max_rounds": -1}, "max_rounds"),
                                          ({"rtol": -1.0}, "rtol"), ({"start": 0}, "start"),
                                          ({"start": -3}, "start"), ({"min_value": 0}, "min_value")])
def test_the_python_api_refuses_settings_the_command_line_refuses(tmp_path, setting, key):
    with pytest.raises(ConfigError) as e:
        sample_complexity(config.loads(GF2), out=tmp_path, progress=False, **setting)
    assert e.value.key == key
    assert not (tmp_path / "g").exists()


def test_the_table_prints_whole_numbers_and_one_mark_for_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text(GF2.replace("sweep: {seeds: 4}", "sweep: {seeds: 4, grid: {target.k: [2, 3]}}"))
    assert main(["search", "g.yaml", "--max", "9", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    censored = next(line.split() for line in lines if line.split()[:1] == ["3"])
    assert censored[1] == "–" and "None" not in "\n".join(lines) and "NaN" not in "\n".join(lines)
    reached = next(line.split() for line in lines if line.split()[:1] == ["2"])
    assert reached[1].isdigit() and reached[4].isdigit()   # estimate and below, as whole numbers


@pytest.mark.parametrize("param, failed, diverged, status, note", [
    ("data.m", 0, 3, 0, "3 runs diverged and count as seeds that did not reach eps"),
    ("train.steps", 0, 3, 0, "3 runs diverged and count as having reached eps where they did so before diverging"),
    ("data.m", 2, 0, 1, "2 runs failed and count as seeds that did not reach eps (see the error column of "),
])
def test_the_notes_and_exit_status_follow_what_failed_and_what_diverged(tmp_path, monkeypatch, capsys, param,
                                                                        failed, diverged, status, note):
    import pandas as pd

    import sparselearn.sweeps.search as search

    def found(exp, eps, delta, **kwargs):
        ps = search.PointSearch((), tried={64: (3, 4), 32: (1, 4)}, failed=failed, diverged=diverged)
        return search.SearchResult(param, 0.05, delta, 0.95, (ps,), str(tmp_path / "store"), pd.DataFrame())

    monkeypatch.setattr(search, "sample_complexity", found)
    (tmp_path / "g.yaml").write_text(GF2.replace("learner: {name: gf2}", "learner: {name: mlp, width: 8}").replace("loss: square, ", "batch: 8, "))
    assert main(["search", str(tmp_path / "g.yaml"), "--param", param, "--quiet"]) == status
    err = capsys.readouterr().err
    assert note in err and ("--retry-failed" in err) == bool(failed)


def test_a_search_stopped_by_max_rounds_is_not_at_its_floor(tmp_path):
    """Stopped after one round at its start (which succeeds), nothing below it tried: an upper
    bound, but not the smallest value the search may try."""
    with pytest.warns(UserWarning, match="max_rounds"):
        res = sample_complexity(config.loads(GF2), delta=0.2, out=tmp_path, start=64, max_rounds=1, progress=False)
    row = res.table().iloc[0]
    assert row["estimate"] == 64 and row["below"] is None and not bool(row["floored"])


def test_a_steps_search_succeeding_at_its_first_evaluated_step_is_floored(tmp_path):
    text = ("experiment: st\ntarget: {name: sparse_parity, n: 4, k: 1}\nlearner: {name: mlp, width: 16}\n"
            "train: {lr: 0.5, batch: 16, steps: 200, eval_every: 20, eps: 0.5}\ndata: {m: 64, test_m: 64}\n"
            "sweep: {seeds: 2}\n")
    res = sample_complexity(config.loads(text), param="train.steps", delta=0.5, out=tmp_path, progress=False)
    row = res.table().iloc[0]
    assert row["estimate"] == 20 and bool(row["floored"])
