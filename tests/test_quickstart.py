"""The quickstart experiment learns for real: the claim its header makes."""

from __future__ import annotations

from pathlib import Path

import sparselearn as sl

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_learns_the_parity_at_large_m_and_not_at_small_m(tmp_path):
    cfg = sl.config.load(ROOT / "configs" / "quickstart.yaml")
    df = sl.run(cfg, tmp_path, progress=False)
    assert len(df) == 24 and (df["status"] == "ok").all()
    big = df[df["m"] == 4096]
    assert (big["test_error"] <= cfg.train.eps).sum() >= 7, big["test_error"].tolist()
    assert big["steps_to_eps"].notna().sum() >= 7
    small = df[df["m"] == 256]
    assert small["test_error"].median() > 0.3  # memorises 256 points, generalises at chance
    assert small["train_error"].median() < 0.05
