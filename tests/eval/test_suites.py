"""The evaluation suites and report (relic eval): batteries, memory on/off, an oracle model, CLI errors."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from relic.camera import integrate
from relic.cli import main
from relic.config import get_preset
from relic.errors import UserError
from relic.eval.suites import EvalConfig, ModelSpec, parse_suites, run_suites
from relic.eval.suites import actions as actions_suite
from relic.eval.suites import memory as memory_suite
from relic.eval.suites import stability as stability_suite
from relic.eval.suites.common import HELD_OUT_BASE as B
from relic.eval.suites.common import ClipCache, World, WorldConfig, set_memory
from relic.models.autoencoder import build_vae


def test_parse_suites():
    assert parse_suites("all") == ("actions", "memory", "quality", "speed", "stability")
    assert parse_suites("all", teacher=True) == ("actions", "memory", "quality", "speed", "distill", "stability",
                                                 "teacher")
    assert parse_suites("memory,actions,memory") == ("memory", "actions")
    assert parse_suites("distill", teacher=True) == ("distill",)
    with pytest.raises(UserError, match="unknown suite bogus"):
        parse_suites("actions,bogus")
    with pytest.raises(UserError, match="needs --teacher"):
        parse_suites("quality,distill")


def test_model_spec_parse():
    assert ModelSpec.parse("runs/student") == ModelSpec("runs/student", "student", True)
    assert ModelSpec.parse("nomem=runs/student:nomem") == ModelSpec("runs/student", "nomem", False)
    assert ModelSpec.parse("relic-tiny:nomem") == ModelSpec("relic-tiny", "relic-tiny-nomem", False)
    with pytest.raises(UserError):
        ModelSpec.parse("x=")


@pytest.mark.parametrize("argv, needle", [
    (["eval", "--model", "/nonexistent/model", "--out", "OUT"], "no such model directory"),
    (["eval", "--preset", "relic-tiny", "--suite", "bogus", "--out", "OUT"], "unknown suite"),
    (["eval", "--preset", "no-such-preset", "--out", "OUT"], "unknown preset"),
    (["eval", "--preset", "relic-tiny", "--gaps", "1,x", "--out", "OUT"], "--gaps"),
    (["eval", "--preset", "relic-tiny", "--compare", "/nonexistent/b", "--out", "OUT"], "no such model directory"),
    (["eval", "--preset", "relic-tiny", "--teacher-shift", "0", "--out", "OUT"], "--teacher-shift"),
    (["eval", "--preset", "relic-tiny", "--seeds", "7", "--out", "OUT"], "held-out world seeds must be >= 2**32"),
    (["eval", "--preset", "relic-tiny", "--suite", "distill", "--out", "OUT"], "the distill suite needs --teacher"),
    (["eval", "--preset", "relic-tiny", "--suite", "distill", "--teacher", "/nonexistent/t", "--out", "OUT"],
     "no such teacher directory"),
    (["eval", "--preset", "relic-tiny", "--suite", "distill", "--teacher", "EMPTY", "--out", "OUT"],
     "cannot load the teacher DiT"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [str(tmp_path / "out") if a == "OUT" else str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "report.json").exists()


def test_model_dir_without_config_is_user_error(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    assert main(["eval", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_battery_scripts_fit_whole_blocks():
    for quick in (True, False):
        scripts = actions_suite.battery(quick=quick)
        assert all((len(a) - 1) % 4 == 0 and a[0, 12] == 1 for _, a, _ in scripts)
        assert len({n for n, _, _ in scripts}) == len(scripts)
    names = [n for n, _, _ in actions_suite.battery()]
    for m in ("dolly_in", "roll_ccw", "pedestal_up", "long_mixed", "pan_right@γ=2"):
        assert m in names


@pytest.mark.parametrize("proto", memory_suite.PROTOCOLS)
def test_memory_protocols_return_to_the_first_visit(proto):
    lead, gap = 4, 160
    a = memory_suite.protocol_script(proto, gap, lead, rot_deg=6.0, out_frames=16)
    assert a.shape == (1 + lead + gap, 13) and (gap % 4 == 0)
    R, P = integrate(a, 0.08)
    np.testing.assert_allclose(R[-1], R[lead], atol=1e-9)
    np.testing.assert_allclose(P[-1], P[lead], atol=1e-9)
    away = R[lead + 1:-1]
    # the view is left: somewhere in between the camera looks >= 90° away from the first visit
    cos = np.einsum("j,tj->t", R[lead][2], away[:, 2])          # cosine between the viewing directions
    assert cos.min() < 0.05
    # too short a gap for the motion: infeasible, not silently shortened
    assert memory_suite.protocol_script(proto, 8, lead, rot_deg=6.0, out_frames=16) is None


def _push(cache, n):
    from relic.memory import LatentKV
    from relic.models.attention import token_positions

    gh, gw = cache.grid
    for i in range(n):
        k = torch.randn(1, 1, gh * gw, 1, 4)
        cache.push(LatentKV(i, k, k.clone(), token_positions(1, gh, gw, i), (gh, gw)), np.eye(3), np.zeros(3))


@pytest.mark.parametrize("budget", [None, 100])
def test_memory_off_is_window_only(budget):
    """set_memory(False): latents leaving the window are dropped; on: they enter the compressed memory."""
    from relic.memory import KVCache

    cfg = dataclasses.replace(get_preset("relic-tiny"))
    cfg.memory = dataclasses.replace(cfg.memory, window=3, token_budget=budget, dtype="fp32")
    session = SimpleNamespace(cfg=cfg, memory=cfg.memory)
    for on in (True, False):
        set_memory(session, on)
        cache = KVCache(session.memory, num_layers=1, heads=1, head_dim=4, grid=(4, 4))
        _push(cache, 10)
        plan = cache.plan()
        mem = [i for i, _ in plan if 0 < i < 10 - 3]
        assert [i for i, _ in plan][-3:] == [7, 8, 9] and plan[0][0] == 0
        assert (len(mem) > 0) == on
        assert (cache.stats()["memory_latents"] > 0) == on
    set_memory(session, True)
    assert session.memory == cfg.memory


class OracleSession:
    """A 'model' whose frames are the exact ground-truth renders of the poses it is steered to (γ included)."""

    def __init__(self, world: World, label: str = "oracle"):
        self.world, self.eval_label, self.default_memory = world, label, True
        self.frames_per_step, self.gamma = 4, 1.0
        self.cfg = get_preset("relic-tiny")
        self.memory = self.cfg.memory
        self.decoder_kind, self.precision = "ground truth", "n/a"

    def start(self, image, prompt, seed=0):
        R, P = self.world.last_poses
        self.R, self.P = R[:1], P[:1]
        # the renderer's output depends slightly on a view's slot in its batch: render the whole commanded
        # path in one call as the suite does, and check the poses the oracle is steered to against it
        self.gt = self.world.render(R, P)
        self.all = (R, P)
        np.testing.assert_array_equal(image, self.gt[0])
        return image[None]

    def step(self, actions):
        a = np.concatenate([np.zeros((1, 13)), actions])
        R, P = integrate(a, self.world.cfg.speed_m, self.gamma, self.R[-1], self.P[-1])
        self.R, self.P = np.concatenate([self.R, R[1:]]), np.concatenate([self.P, P[1:]])
        n = len(self.R)
        np.testing.assert_allclose(self.R, self.all[0][:n], atol=1e-12)
        np.testing.assert_allclose(self.P, self.all[1][:n], atol=1e-12)
        return self.gt[n - len(actions):n]


def test_oracle_model_scores_the_noise_floor_and_perfect_revisits():
    """Comparing two computations: a model that renders the ground truth must score exactly the noise floor
    (same frames, same estimator), and its revisit frames must equal the ground truth."""
    world = World(WorldConfig())
    try:
        s = OracleSession(world)
        cache = ClipCache()
        rep = actions_suite.run([s], world, cache, [B], quick=True)
        floor = rep["noise_floor"]["results"]
        mine = rep["models"]["oracle"]["results"]
        assert len(floor) == len(mine) == 2
        for f, m in zip(floor, mine):
            assert "skipped" not in m
            for k in ("rpe_trans", "rpe_rot_deg", "rot_err_per_frame_median_deg", "direction_match"):
                assert f[k] == m[k], k
        assert mine[0]["rpe_trans"] is not None and mine[1]["rpe_trans"] is None       # pan: not observable
        assert mine[1]["rpe_rot_deg"] < 0.5 and mine[1]["direction_match"] is True
        mem = memory_suite.run([s], world, cache, [B + 100], fps=16, frames_per_step=4, quick=True)
        rows = [r for r in mem["results"] if "skipped" not in r]
        assert {r["memory"] for r in rows} == {"on", "off"}
        for r in rows:
            assert r["psnr_gt"] == memory_suite.PSNR_CAP and r["ssim_gt"] == pytest.approx(1.0)
            assert r["return_error_m"] < 1e-9
    finally:
        world.release()


@pytest.mark.slow
def test_report_compares_models(tmp_path):
    """Two models in one report: every table, plot and the JSON carry both labels; nothing is left at NaN/inf."""
    from relic.eval.report import write_report
    from relic.eval.suites import quality as quality_suite
    from relic.eval.suites.common import model_summary

    world = World(WorldConfig())
    try:
        sessions = [OracleSession(world, "teacher"), OracleSession(world, "student")]
        cache = ClipCache()
        report = {"created_utc": "now", "quick": True, "suites": ["actions", "memory", "quality"],
                  "held_out": {"note": "test", "actions": [B], "memory": [B + 100]},
                  "models": [{**model_summary(s), "source": "oracle"} for s in sessions], "timing_s": {},
                  "actions": actions_suite.run(sessions, world, cache, [B], quick=True),
                  "memory": memory_suite.run(sessions, world, cache, [B + 100], 16, 4, quick=True),
                  "quality": quality_suite.run(sessions, world, cache, [B], 16, quick=True),
                  "_clips": cache}
        report["memory"]["window_s"] = 1.5
    finally:
        world.release()
    write_report(report, tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    rep = json.loads(text)
    assert set(rep["actions"]["models"]) == set(rep["memory"]["summary"]) == set(rep["quality"]["models"]) \
        == {"teacher", "student"}
    assert {"actions_trajectories_teacher.png", "actions_trajectories_student.png"} <= set(rep["plots"])
    q = rep["quality"]
    assert q["models"]["teacher"]["summary"]["flicker"] == pytest.approx(q["ground_truth"]["summary"]["flicker"])
    md = (tmp_path / "report.md").read_text()
    assert "teacher RPE-t" in md and "student RPE-t" in md
    assert "**Beats copying**" in md and "| teacher | 1 |" in md
    assert {"quality_horizon.png", "quality_horizon_strip.png"} <= set(rep["plots"])
    assert set(rep["quality"]["horizon"]["models"]) == {"teacher", "student"}
    assert len(rep["videos"]) == 2 * 4 and all((tmp_path / v).is_file() for v in rep["videos"])


def test_lpips_local_weights(tmp_path):
    from safetensors.torch import save_file

    from relic.eval.lpips import LPIPS

    torch.manual_seed(0)
    m = LPIPS()
    for p in m.parameters():
        p.data.abs_()                                    # LPIPS lin weights are non-negative
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "lp.safetensors"))
    lp = LPIPS.from_file(str(tmp_path / "lp.safetensors"))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(lp(a, a), 0.0, atol=1e-6)
    d = lp(a, b)
    assert (d > 0).all()
    np.testing.assert_allclose(d, lp(b, a), rtol=1e-5)
    np.testing.assert_allclose(d, [lp(x, y)[0] for x, y in zip(a, b)], rtol=1e-5)     # batch == per frame
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UserError, match="not LPIPS"):
        LPIPS.from_file(str(tmp_path / "bad.safetensors"))
    (tmp_path / "junk").write_text("nope")
    with pytest.raises(UserError, match="cannot read"):
        LPIPS.from_file(str(tmp_path / "junk"))


def test_run_suites_rejects_duplicate_labels():
    with pytest.raises(UserError, match="unique"):
        run_suites([ModelSpec("relic-tiny", "a"), ModelSpec("relic-tiny", "a", False)], ("speed",), EvalConfig())


@pytest.mark.slow
def test_eval_quick_end_to_end_on_random_weights(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--preset", "relic-tiny", "--suite", "all", "--quick", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["format"] == "relic-eval-report" and rep["quick"] is True
    assert rep["suites"] == ["actions", "memory", "quality", "speed", "stability"]
    assert rep["held_out"]["actions"] == [B] and rep["held_out"]["memory"] == [B + 100]
    assert rep["models"][0]["label"] == "relic-tiny"
    a = rep["actions"]
    assert a["noise_floor"]["summary"]["n_clips"] == 2
    assert a["noise_floor"]["summary"]["rpe_trans"] is not None          # the floor is measurable
    s = a["models"]["relic-tiny"]["summary"]
    assert s["n_clips"] == 2 and "rpe_trans" in s                          # garbage video: None, not a crash
    assert set(a["models"]["relic-tiny"]["direction_accuracy"]) == {"dolly_in", "pan_right"}
    m = rep["memory"]["summary"]["relic-tiny"]
    assert set(m) == {"on", "off"} and all(g["n"] == 1 for v in m.values() for g in v.values())
    q = rep["quality"]["models"]["relic-tiny"]["summary"]
    assert 0 <= q["flicker"] <= 1 and q["psnr_early_mean"] is not None
    assert rep["quality"]["lpips"].startswith("omitted")
    h = rep["speed"]["models"]["relic-tiny"]["horizons"]
    assert len(h) == 1 and h[0]["fps"] > 0 and h[0]["kv_tokens"] > 0
    for p in rep["plots"]:
        assert (out / p).stat().st_size > 0
    assert {"actions_rpe.png", "actions_trajectories_relic-tiny.png", "memory_psnr_vs_gap.png", "memory_strips.png",
            "quality_psnr_early.png", "speed.png"} <= set(rep["plots"])
    assert rep["videos"] and all((out / v).stat().st_size > 0 for v in rep["videos"])
    md = (out / "report.md").read_text()
    assert "## Actions" in md and "## Memory" in md and "## Quality" in md and "## Speed" in md


def _segments(flicker, sharp, rss, kv, seg_s=20.0):
    return [{"t_end_s": seg_s * (i + 1), "flicker": f, "sharpness": h, "rss_mib": r, "kv_bytes": k}
            for i, (f, h, r, k) in enumerate(zip(flicker, sharp, rss, kv))]


def test_stability_summary_logic():
    """The stability verdicts on synthetic segment numbers (15 segments = a 5-minute stream of 20 s segments)."""
    n = 15
    flat = _segments([0.95] * n, [100.0] * n, [1000.0] * n, [2**20] * n)
    s = stability_suite.summarize(flat)
    assert s["mid_segment"] == 7 and s["stream_s"] == 300.0                  # first segment end >= 150 s
    assert s["flicker_max_rel_dev"] == 0.0 and s["within_10pct"] == {"flicker": True, "sharpness": True, "all": True}
    assert s["rss_growth_mib"] == 0.0 and s["memory_flat"] is True
    # a 15 % sharpness drop at the end is outside 10 %; a 9 % flicker change is inside
    s = stability_suite.summarize(_segments([0.95] * (n - 1) + [0.95 * 1.09], [100.0] * (n - 1) + [85.0],
                                            [1000.0] * n, [2**20] * n))
    assert s["sharpness_max_rel_dev"] == pytest.approx(0.15) and s["within_10pct"]["sharpness"] is False
    assert s["flicker_max_rel_dev"] == pytest.approx(0.09) and s["within_10pct"]["flicker"] is True
    assert s["within_10pct"]["all"] is False
    # RSS growing 10 MiB per segment: 80 MiB over the second half > 5 % of 1000 MiB -> not flat
    s = stability_suite.summarize(_segments([0.95] * n, [100.0] * n, [1000.0 + 10 * i for i in range(n)], [2**20] * n))
    assert s["rss_growth_mib"] == 140.0 and s["rss_growth_second_half_mib"] == 70.0
    assert s["rss_flat"] is False and s["memory_flat"] is False
    # RSS growing in the first half only (warm-up), flat afterwards -> flat
    rss = [1000.0 + 30 * min(i, 5) for i in range(n)]
    s = stability_suite.summarize(_segments([0.95] * n, [100.0] * n, rss, [2**20] * n))
    assert s["rss_growth_mib"] == 150.0 and s["rss_growth_second_half_mib"] == 0.0 and s["memory_flat"] is True
    # flat RSS but an unbounded KV cache (+10 % of the mid value per segment) -> not flat
    kv = [2**20 * (1 + 0.1 * i) for i in range(n)]
    s = stability_suite.summarize(_segments([0.95] * n, [100.0] * n, [1000.0] * n, kv))
    assert s["rss_flat"] is True and s["kv_bounded"] is False and s["memory_flat"] is False
    # one segment: no deviation can be measured -> unknown, not within tolerance
    s = stability_suite.summarize(_segments([0.95], [100.0], [1000.0], [0]))
    assert s["within_10pct"] == {"flicker": None, "sharpness": None, "all": False}
    assert s["saturation_ratio_min"] is None                                  # rows without saturation
    # saturation ratios: first, last and the lowest segment
    segs = _segments([0.95] * 3, [100.0] * 3, [1000.0] * 3, [0] * 3)
    for x, r in zip(segs, (0.9, 0.4, 0.7)):
        x["saturation_ratio"] = r
    s = stability_suite.summarize(segs)
    assert (s["saturation_ratio_first"], s["saturation_ratio_last"], s["saturation_ratio_min"]) == (0.9, 0.7, 0.4)


def test_stability_script_replays_every_motion_per_segment():
    a = stability_suite.segment_actions(320, rot_deg=2.0)
    assert a.shape == (320, 13)
    assert ((a[:, :12] > 0).any(1) | (a[:, 12] == 1)).all() and not ((a[:, :12] > 0).any(1) & (a[:, 12] == 1)).any()
    assert (a[:, :12] > 0).any(0).all()                                     # all 12 motions appear
    assert set(np.unique(a[:, :12])) == {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(stability_suite.segment_actions(16), stability_suite.segment_actions(16))


def test_distill_and_stability_quick(tmp_path):
    """Both new suites end to end on random relic-tiny weights (a random teacher DiT), and their report."""
    from relic.eval.report import write_report
    from relic.models.dit import DiT

    torch.manual_seed(1)
    DiT(get_preset("relic-tiny").dit).save_pretrained(tmp_path / "teacher")
    cfg = EvalConfig(quick=True, teacher=str(tmp_path / "teacher"))
    report = run_suites([ModelSpec("relic-tiny", "tiny")], ("distill", "stability"), cfg, log=lambda m: None)
    d = report["distill"]
    assert d["teacher"]["steps"] == 2 and len(d["clips"]) == 1
    rows = d["models"]["tiny"]["results"]
    assert len(rows) == 1 and "skipped" not in rows[0]
    r = rows[0]
    for k in ("teacher_s", "student_s", "speedup", "psnr_early_mean_teacher", "psnr_early_mean_student"):
        assert np.isfinite(r[k]) and r[k] > 0, k
    assert r["speedup"] == pytest.approx(r["teacher_s"] / r["student_s"])
    assert r["psnr_loss_db"] == pytest.approx(r["psnr_early_mean_teacher"] - r["psnr_early_mean_student"])
    assert len(r["psnr_early_teacher"]) == len(r["psnr_early_student"]) == 5     # 5-frame clip, 1 s = 16 frames
    s = d["models"]["tiny"]["summary"]
    assert s["psnr_loss_db"] == pytest.approx(s["psnr_early_mean_teacher"] - s["psnr_early_mean_student"])
    assert s["meets_target"]["speedup_20x"] == (s["speedup_median"] >= 20)
    assert s["meets_target"]["psnr_loss_1.5db"] == (s["psnr_loss_db"] <= 1.5)

    st = report["stability"]
    assert st["seconds"] == 2.0 and st["segment_s"] == 1.0
    segs = st["models"]["tiny"]["segments"]
    assert [x["t_end_s"] for x in segs] == [1.0, 2.0]
    assert segs[0]["frames"] == 17 and segs[1]["frames"] == 16
    assert all(x["rss_mib"] > 0 and x["kv_bytes"] > 0 and 0 <= x["flicker"] <= 1 and x["fps"] > 0 for x in segs)
    # every segment's saturation is divided by the same reference, the ground-truth start frame's
    refs = [x["saturation"] / x["saturation_ratio"] for x in segs]
    assert refs[0] > 0 and refs[1] == pytest.approx(refs[0])
    summ = st["models"]["tiny"]["summary"]
    dev = abs(segs[1]["sharpness"] / segs[0]["sharpness"] - 1)
    assert summ["sharpness_max_rel_dev"] == pytest.approx(dev)
    assert summ["within_10pct"]["sharpness"] == (dev <= 0.1)
    assert summ["rss_growth_mib"] == pytest.approx(segs[1]["rss_mib"] - segs[0]["rss_mib"])

    write_report(report, tmp_path / "out", videos=False)
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"distill.png", "stability.png", "stability_strips.png"} <= set(rep["plots"])
    assert all((tmp_path / "out" / p).stat().st_size > 0 for p in rep["plots"])
    assert "_strips" not in rep["stability"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Distillation (teacher vs student)" in md and "## Stability (long stream)" in md
    assert "saturation first / last / min" in md


def test_load_teacher_accepts_a_model_directory(tmp_path):
    from relic.eval.suites.distill import load_teacher
    from relic.models.dit import DiT
    from relic.runtime.stream import save_model_dir

    cfg = get_preset("relic-tiny")
    save_model_dir(tmp_path / "m", cfg, DiT(cfg.dit), build_vae(cfg.vae))
    assert load_teacher(str(tmp_path / "m")).cfg == cfg.dit
    (tmp_path / "m" / "dit.safetensors").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot load the teacher DiT") as e:
        load_teacher(str(tmp_path / "m"))
    assert len(str(e.value).splitlines()) == 1


def test_report_names_models_relative_to_the_working_directory(tmp_path, monkeypatch):
    from relic.eval.suites import shown_source

    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "weights" / "relic-tiny"
    assert shown_source(str(inside)) == "weights/relic-tiny"          # the default model's absolute path
    assert shown_source("weights/relic-tiny") == "weights/relic-tiny"
    assert shown_source("relic-tiny") == "relic-tiny"                   # a preset name
    outside = tmp_path.parent / "elsewhere"
    assert shown_source(str(outside)) == str(outside)


class FrozenSession(OracleSession):
    """The trivial baseline as a 'model': the start frame, repeated."""

    def step(self, actions):
        super().step(actions)
        return np.repeat(self.gt[:1], len(actions), axis=0)


def test_horizon_scores_the_oracle_above_and_the_frozen_frame_at_exactly_zero():
    """The horizon (beats copying) measure: a model that repeats its start frame gains exactly 0 dB at every
    time; one that renders the ground truth gains the PSNR cap minus the frozen PSNR, and meets the target."""
    from relic.eval.suites import horizon
    from relic.eval.suites.memory import PSNR_CAP

    world = World(WorldConfig())
    try:
        rep = horizon.run([OracleSession(world, "oracle"), FrozenSession(world, "frozen")], world, [B], 16,
                          quick=True)
    finally:
        world.release()
    assert rep["times_s"] == [0.5, 1.0] and rep["target_db"] == [None, 1.5]
    fro, ora = rep["models"]["frozen"]["summary"], rep["models"]["oracle"]["summary"]
    assert fro["n_scenes"] == ora["n_scenes"] == 1
    assert fro["gain_db"] == [0.0, 0.0] and fro["target_met"] == [None, False]
    assert ora["psnr"] == [PSNR_CAP, PSNR_CAP] and ora["target_met"] == [None, True]
    assert ora["gain_db"] == pytest.approx([PSNR_CAP - f for f in fro["psnr_frozen"]])
    assert all(f < 40 for f in fro["psnr_frozen"])                       # the quick script does move


def test_horizon_gains_window_and_bounds():
    """Each time averages the frames within ±half a window (frame 0 never counts); past the clip is None."""
    from relic.eval.suites.horizon import gains, wander_script
    from relic.eval.suites.memory import psnr

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (9, 4, 6, 3), dtype=np.uint8)
    frames = gt.copy()
    frames[1:] = rng.integers(0, 256, (8, 4, 6, 3), dtype=np.uint8)
    g = gains(gt, frames, fps=4, times=(0.0, 1.0, 5.0), half_window_s=0.25)     # ±1 frame
    assert g["psnr"][0] == pytest.approx(psnr(frames[1], gt[1]))                  # t = 0: frame 1 only
    assert g["psnr"][1] == pytest.approx(np.mean([psnr(frames[i], gt[i]) for i in (3, 4, 5)]))
    assert g["psnr_frozen"][1] == pytest.approx(np.mean([psnr(gt[0], gt[i]) for i in (3, 4, 5)]))
    assert g["gain_db"][1] == pytest.approx(g["psnr"][1] - g["psnr_frozen"][1])
    assert g["psnr"][2] is None and g["gain_db"][2] is None
    a = wander_script(16, 20.0, step=4)
    assert a.shape == (321, 13) and a[0, 12] == 1 and not a[1:, 12].any()           # every frame moves
