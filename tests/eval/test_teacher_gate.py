"""The teacher gate (``relic eval --suite teacher``): its metrics on known frames, and end to end on random weights."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from relic.cli import main
from relic.config import get_preset
from relic.errors import UserError
from relic.eval.metrics import saturation
from relic.eval.suites import EvalConfig, ModelSpec, parse_suites, run_suites
from relic.eval.suites import teacher as gate
from relic.eval.suites.common import HELD_OUT_BASE as B


def _video(seed: int = 0, n: int = 49, h: int = 32, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(n, h // 4, w // 4, 3)).astype(np.float32)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in small]).clip(0, 255).astype(np.uint8)


def test_scene_metrics_on_known_frames():
    gt = _video()
    frames = gate.frame_indices(16)
    assert frames == [8, 16, 32, 48]
    same = gate.scene_row(gt, gt.copy(), frames)
    assert same["saturation_ratio"] == [1.0] * 4 and same["sharpness_ratio"] == [1.0] * 4
    assert all(p >= 99 for p in same["psnr_teacher"])                      # identical frames: the PSNR cap
    # grey mush: colourless, flat -> both ratios near 0, and the frozen baseline is the start frame's PSNR
    mush = np.full_like(gt, 120)
    row = gate.scene_row(gt, mush, frames)
    assert all(r < 0.05 for r in row["saturation_ratio"]) and all(r < 0.05 for r in row["sharpness_ratio"])
    from relic.eval.metrics import psnr
    assert row["psnr_frozen"] == pytest.approx([psnr(gt[0], gt[k]) for k in frames])
    # blur keeps the colour but not the detail
    blur = np.stack([cv2.GaussianBlur(f, (7, 7), 2.0) for f in gt])
    row = gate.scene_row(gt, blur, frames)
    assert all(0.5 < r < 1.2 for r in row["saturation_ratio"]) and all(r < 0.5 for r in row["sharpness_ratio"])
    assert saturation(np.full((4, 4, 3), 90, np.uint8)) == 0.0

    with_vae = gate.scene_row(gt, mush, frames, vae=blur)
    assert with_vae["psnr_vae"] == pytest.approx(row["psnr_teacher"])
    assert with_vae["sharpness_ratio_vae"] == pytest.approx(row["sharpness_ratio"])
    s = gate.summarize([row, {"seed": 1, "skipped": "no start pose"}, gate.scene_row(gt, gt, frames)])
    assert "psnr_vae" not in s and "student_gain_db" not in s
    assert s["n_scenes"] == 2 and s["times_s"] == [0.5, 1.0, 2.0, 3.0]
    assert s["psnr_gain_db"] == pytest.approx([a - b for a, b in zip(s["psnr_teacher"], s["psnr_frozen"])])
    assert s["beats_frozen"] == [g > 0 for g in s["psnr_gain_db"]]
    # the student's stream beside the teacher: its gain over frozen and its distance to the teacher
    rows = [gate.scene_row(gt, blur, frames, student=mush), gate.scene_row(gt, gt, frames, student=blur)]
    assert rows[0]["psnr_student"] == pytest.approx(gate.scene_row(gt, mush, frames)["psnr_teacher"])
    s = gate.summarize(rows)
    assert s["student_gain_db"] == pytest.approx([a - b for a, b in zip(s["psnr_student"], s["psnr_frozen"])])
    assert s["student_vs_teacher_db"] == pytest.approx([a - b for a, b in zip(s["psnr_student"], s["psnr_teacher"])])
    assert all(d < 0 for d in s["student_vs_teacher_db"])            # mush and blur lose to blur and identity


def test_script_and_strip_shapes():
    a = gate.gate_script(16)
    assert a.shape == (49, 13) and a[0, 12] == 1 and (a[1:, 0] == 1.0).all() and (a[1:, 9] == 1.0).all()
    gt = _video(n=49)
    img = gate.strip([(B, gt, gt), (B + 1, gt, gt)], [8, 16, 32, 48], gate.TIMES_S)
    h, w = gt.shape[1:3]
    assert img.dtype == np.uint8 and img.shape[1] == 5 * w + 4 * 2 and 6 * h < img.shape[0] < 8 * h
    four = gate.strip([(B, gt, gt, gt)], [8, 16, 32, 48], gate.TIMES_S)    # + the VAE round-trip row
    assert 4 * h < four.shape[0] < 5 * h
    five = gate.strip([(B, gt, gt, gt, gt)], [8, 16, 32, 48], gate.TIMES_S)  # + the student's row
    assert 5 * h < five.shape[0] < 6 * h


def test_parse_suites_teacher_needs_a_teacher():
    assert parse_suites("teacher", teacher=True) == ("teacher",)
    assert "teacher" in parse_suites("all", teacher=True) and "teacher" not in parse_suites("all")
    with pytest.raises(UserError, match="the teacher suite needs --teacher"):
        parse_suites("teacher")


def test_teacher_gate_quick_on_random_weights(tmp_path):
    """End to end on random relic-tiny weights (a random teacher DiT): JSON fields, the strip PNG, report.md."""
    from relic.eval.report import write_report

    torch.manual_seed(2)
    from relic.models.dit import DiT

    DiT(get_preset("relic-tiny").dit).save_pretrained(tmp_path / "teacher")
    cfg = EvalConfig(quick=True, teacher=str(tmp_path / "teacher"), precision="fp32", teacher_sampler="renoise")
    report = run_suites([ModelSpec("relic-tiny", "tiny")], ("teacher",), cfg, log=lambda m: None)
    tg = report["teacher"]
    assert tg["teacher"]["steps"] == 2 and tg["seeds"] == [B] and tg["frames"] == [8, 16, 32, 48]
    assert tg["teacher"]["sampler"] == "renoise"
    r = tg["results"][0]
    assert "skipped" not in r and r["frames"] == 49
    for k in ("psnr_teacher", "psnr_frozen", "saturation_ratio", "sharpness_ratio", "psnr_vae",
              "saturation_ratio_vae", "sharpness_ratio_vae", "psnr_student", "saturation_ratio_student",
              "sharpness_ratio_student"):
        assert len(r[k]) == 4 and all(np.isfinite(x) for x in r[k]), k
    assert tg["summary"]["n_scenes"] == 1 and len(tg["summary"]["psnr_vae"]) == 4
    d = tg["directions"]                                           # quick: the actions suite's two one-block scripts
    for who in ("teacher", "student", "ground_truth"):
        assert [r["script"] for r in d[who]["results"]] == ["dolly_in", "pan_right@γ=2"], who
        assert set(d[who]["direction_accuracy"]) == {"dolly_in", "pan_right"} and d[who]["n_motions"] == 2
    assert d["ground_truth"]["direction_accuracy"]["dolly_in"]["matched"] == 1   # the rendered dolly reads as one
    for who in ("teacher", "student"):
        assert set(d[who]["contrast_db"]) == {"dolly_in", "pan_right"} and np.isfinite(d[who]["contrast_db_mean"])
    assert "contrast_db" not in d["ground_truth"]
    write_report(report, tmp_path / "out", videos=False)
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "teacher_strip.png" in rep["plots"] and "_strip" not in rep["teacher"]
    from PIL import Image
    assert Image.open(tmp_path / "out" / "teacher_strip.png").size[0] == 5 * 224 + 4 * 2
    assert "direction_strip.png" in rep["plots"] and "_strip" not in rep["teacher"]["directions"]
    assert Image.open(tmp_path / "out" / "direction_strip.png").size == (5 * 224 + 4 * 2, 2 * 128 + 2)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Teacher gate" in md and "saturation ratio" in md and "teacher_strip.png" in md
    assert "direction_strip.png" in md
    assert "re-noising" in md and "student − teacher (dB)" in md
    assert "### Directions" in md and "| dolly_in | " in md and "| teacher (dB) | student (dB) |" in md


def test_cli_teacher_suite_without_teacher_is_one_line(tmp_path, capsys):
    assert main(["eval", "--preset", "relic-tiny", "--suite", "teacher", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "the teacher suite needs --teacher" in err and len(err.splitlines()) == 1


def test_direction_scripts_are_the_actions_suites_single_motions():
    """The directions check uses exactly the actions suite's 12 single-motion scripts (γ = 1), so its student
    numbers are the actions suite's, and the ground truth of each is estimated as its own motion."""
    from relic.eval.direction import MOTIONS, dominant_command
    from relic.eval.suites.actions import battery
    from relic.eval.suites.teacher import direction_scripts

    full = direction_scripts()
    assert [n for n, _, _ in full] == list(MOTIONS) and all(g == 1.0 for _, _, g in full)
    by_name = {n: a for n, a, g in battery() if g == 1.0}
    for n, a, _ in full:
        assert np.array_equal(a, by_name[n]) and dominant_command(a) == n and len(a) == 25
    assert [n for n, _, _ in direction_scripts(quick=True)] == ["dolly_in", "pan_right@γ=2"]


def test_contrast_db_is_zero_for_the_start_frame_and_positive_for_the_own_motion():
    """The estimator-free direction score: the start frame repeated scores exactly 0, a clip that ends near its own
    motion's last frame scores > 0, one that ends near the opposite motion's scores < 0; opposite() pairs motions."""
    from relic.eval.direction import MOTIONS, opposite
    from relic.eval.suites.teacher import contrast_db

    rng = np.random.default_rng(0)
    own = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    other = own.copy()
    other[1:] = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    other[0] = own[0]
    frozen = np.repeat(own[:1], 5, 0)
    assert contrast_db(frozen, own, other) == 0.0

    def near(x):
        return np.clip(x.astype(int) + rng.integers(-8, 9, x.shape), 0, 255).astype(np.uint8)

    assert contrast_db(near(own), own, other) > 5 and contrast_db(near(other), own, other) < -5
    assert opposite("dolly_in") == "dolly_out" and opposite("roll_ccw") == "roll_cw"
    assert sorted(opposite(m) for m in MOTIONS) == sorted(MOTIONS) and all(opposite(opposite(m)) == m for m in MOTIONS)
    with pytest.raises(ValueError, match="unknown motion"):
        opposite("jump")


def test_direction_strip_puts_each_frame_in_its_column():
    """Rows are motions, columns start | ground truth | teacher | student | opposite's ground truth, in that order."""
    from relic.eval.suites.teacher import direction_strip

    def tile(v):
        return np.full((20, 30, 3), v, np.uint8)

    img = direction_strip([("7:dolly_in", [tile(10 * k + 1) for k in range(5)]),
                           ("7:dolly_out", [tile(10 * k + 100) for k in range(5)])])
    assert img.shape == (2 * 20 + 2, 5 * 30 + 4 * 2, 3)
    for r, base in ((0, 1), (1, 100)):
        for k in range(5):
            assert img[r * 22 + 15, k * 32 + 25, 0] == base + 10 * k, (r, k)     # below the label
