"""Each distillation round's configs chain into each other, and scripts/distill_round.sh refuses unknown rounds.

A round is the suffix shared by configs/tiny/{ode_pairs,ode_init,dmd}_<suffix>.yaml; scripts/distill_round.sh runs
them in order, so the student must start from the teacher that drew the pairs, regress onto those pairs, and DMD
must start from that student against the same teacher.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny"


def _rounds() -> list[str]:
    suffixes = {p.stem.removeprefix("dmd_") for p in TINY.glob("dmd_*.yaml")}
    return sorted(s for s in suffixes
                  if (TINY / f"ode_pairs_{s}.yaml").exists() and (TINY / f"ode_init_{s}.yaml").exists())


def _load(name: str) -> dict:
    return yaml.safe_load((TINY / name).read_text())


def test_there_are_rounds_to_check():
    assert {"r6", "r10", "r10b"} <= set(_rounds())


@pytest.mark.parametrize("suffix", _rounds())
def test_round_configs_chain(suffix):
    pairs, init, dmd = (_load(f"{stage}_{suffix}.yaml") for stage in ("ode_pairs", "ode_init", "dmd"))
    assert init["pairs"] == pairs["out"], "ODE init must regress onto this round's pairs"
    assert init["init"] == pairs["teacher"], "the student starts from the teacher that drew the pairs"
    assert dmd["student"] == f"{init['out']}/final", "DMD starts from this round's ODE-init export"
    assert dmd["teacher"] == pairs["teacher"], "DMD's real score is the pairs' teacher"
    assert len({pairs["out"], init["out"], dmd["out"]}) == 3


def test_distill_round_refuses_an_unknown_round(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "distill_round.sh"), "no_such_round", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "distill_round: configs/tiny/ode_pairs_no_such_round.yaml not found"
    assert not any(tmp_path.iterdir()), "nothing is made before the configs are checked"


@pytest.mark.parametrize("path", sorted(TINY.glob("dmd*.yaml")), ids=lambda p: p.name)
def test_dmd_configs_load(path):
    """Every DMD config parses into the stage's typed config (an unknown key or a wrong type is an error)."""
    from relic.training.config import load_stage_config
    from relic.training.dmd import DMDStageConfig

    cfg = load_stage_config(DMDStageConfig, path)
    if cfg.dmd.window_seconds is not None:           # the window is what the teacher saw in training
        teacher = _load(f"teacher_{Path(cfg.teacher).name.removeprefix('teacher_')}.yaml")
        assert cfg.dmd.window_seconds == teacher["data"]["seconds"]
        assert cfg.data.seconds > cfg.dmd.window_seconds
