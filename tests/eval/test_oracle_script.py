"""scripts/oracle_actions.py: the actions suite's autoencoder oracle (ground truth through the VAE and back)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("oracle_actions", ROOT / "scripts" / "oracle_actions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_oracle_rows_on_the_shipped_model(tmp_path, monkeypatch):
    mod = _script()
    seen = []
    real = mod.oracle_frames

    def spy(session, gt):
        tiny, vae = real(session, gt)
        seen.append((gt, tiny, vae))
        return tiny, vae

    monkeypatch.setattr(mod, "oracle_frames", spy)
    out = tmp_path / "oracle.json"
    monkeypatch.setattr(sys, "argv", ["oracle_actions.py", "--quick", "--seeds", str(2**32), "--out", str(out)])
    mod.main()
    res = json.loads(out.read_text())
    assert set(res["rows"]) == set(mod.ROWS)
    gt_dirs = res["rows"]["ground_truth"]["direction_accuracy"]
    assert gt_dirs["dolly_in"]["accuracy"] == 1.0 and gt_dirs["pan_right"]["accuracy"] == 1.0
    assert seen
    for gt, tiny, vae in seen:                  # frame-aligned reconstructions of the same video
        for rec in (tiny, vae):
            assert rec.shape == gt.shape and rec.dtype == np.uint8
            mse = ((rec.astype(float) - gt) ** 2).mean()
            assert 10 * np.log10(255 ** 2 / mse) > 14.0


def test_oracle_script_refuses_training_seeds(monkeypatch, tmp_path):
    mod = _script()
    monkeypatch.setattr(sys, "argv", ["oracle_actions.py", "--seeds", "7", "--out", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit) as e:
        mod.main()
    assert e.value.code != 0 and not (tmp_path / "o.json").exists()
