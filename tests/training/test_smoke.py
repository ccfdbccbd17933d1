"""End-to-end smoke of the whole training pipeline on rendered clips at a toy size (configs/smoke/).

Every stage runs a few steps from the CLI, writes a checkpoint and an export, and the next stage loads it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from relic.cli import main
from relic.training.checkpoint import latest_checkpoint
from relic.training.loop import read_metrics

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke"


def _train(stage: str, cfg: str, *overrides: str) -> None:
    assert main(["train", stage, "--config", str(SMOKE / cfg), *overrides]) == 0


def _loss_went_down(out: Path) -> None:
    losses = [r["loss"] for r in read_metrics(out)]
    half = len(losses) // 2
    assert min(losses[half:]) < losses[0], losses


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path):
    clips, latents, runs = tmp_path / "clips", tmp_path / "latents", tmp_path / "runs"
    assert main(["world", "render", "--out", str(clips), "--clips", "3", "--seconds", "1.1", "--size", "32x32",
                 "--workers", "1"]) == 0
    data = [f"data.clips={clips}"]

    _train("vae", "vae.yaml", *data, f"out={runs / 'vae'}")
    # relic-tiny's pooled autoencoder starts at the pool + bicubic baseline, so 6 steps on random windows move its
    # loss less than the windows do; that it learns is shown on fixed data in tests/training/test_vae_stage.py
    assert all(math.isfinite(r["loss"]) for r in read_metrics(runs / "vae"))
    assert latest_checkpoint(runs / "vae" / "checkpoints") is not None
    vae = runs / "vae" / "final"
    assert (vae / "model.safetensors").is_file() and (runs / "vae" / "eval.json").is_file()

    _train("tiny-decoder", "tiny_decoder.yaml", *data, f"vae={vae}", f"out={runs / 'tiny'}")
    # it decodes onto the pooled VAE's colour base, so it too starts near its optimum (see the VAE above);
    # that it learns is shown on fixed data in tests/training/test_vae_stage.py
    assert all(math.isfinite(r["loss"]) for r in read_metrics(runs / "tiny"))

    assert main(["data", "encode", str(clips), "--vae", str(vae), "--out", str(latents)]) == 0
    lat = [f"data.clips={clips}", f"data.latents={latents}"]

    _train("teacher", "teacher.yaml", *lat, f"vae={vae}", f"out={runs / 'teacher'}")
    _loss_went_down(runs / "teacher")
    teacher = runs / "teacher" / "final"
    probe = json.loads((runs / "teacher" / "eval.json").read_text())          # the conditioning probe ran
    assert probe["probe/loss_true"] > 0 and math.isfinite(probe["probe/mirror_gap"])

    _train("ode-pairs", "ode_pairs.yaml", *lat, f"teacher={teacher}", f"out={runs / 'pairs'}", "num_samples=2")
    assert len(list((runs / "pairs").glob("pair_*.safetensors"))) == 2

    _train("ode-init", "ode_init.yaml", f"init={teacher}", f"pairs={runs / 'pairs'}", f"out={runs / 'ode_init'}")
    assert latest_checkpoint(runs / "ode_init" / "checkpoints") is not None

    _train("dmd", "dmd.yaml", *lat, f"student={runs / 'ode_init' / 'final'}", f"teacher={teacher}", f"vae={vae}",
           f"out={runs / 'dmd'}", "loop.steps=2", "dmd.critic_steps=1", "regression.weight=0.5",
           f"regression.pairs={runs / 'pairs'}")
    assert (runs / "dmd" / "final" / "model.safetensors").is_file()
    assert all(r["regression"] > 0 for r in read_metrics(runs / "dmd"))
    from relic.models.dit import DiT
    DiT.from_pretrained(runs / "dmd" / "final")
