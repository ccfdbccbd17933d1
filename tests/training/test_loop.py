"""The common trainer: configs, checkpoints, exact resume (in-process and after SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from relic.errors import UserError
from relic.training.checkpoint import (flatten_state, latest_checkpoint, list_checkpoints, load_checkpoint,
                                       save_checkpoint, unflatten_state)
from relic.training.config import LoopConfig, OptimConfig, apply_overrides, load_stage_config, parse_override
from relic.training.loop import Task, Trainer, lr_factor, param_groups, read_metrics

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------- configs

@dataclass
class _Sub:
    a: int = 1
    b: tuple[int, int] = (2, 3)


@dataclass
class _Cfg:
    out: str = "x"
    sub: _Sub = field(default_factory=_Sub)
    model: dict = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)


def test_yaml_and_dotted_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("out: run\nsub: {a: 5}\noptim: {lr: 1e-3}\n")
    cfg = load_stage_config(_Cfg, p, ["optim.lr=2e-4", "sub.b=[7, 8]", "model.vae.base_dim=16"])
    assert cfg.out == "run" and cfg.sub.a == 5 and cfg.sub.b == (7, 8)
    assert cfg.optim.lr == pytest.approx(2e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.model == {"vae": {"base_dim": 16}}
    assert parse_override("loop.ema_decay=null") == (["loop", "ema_decay"], None)


def test_config_errors_name_the_field(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sub: {zzz: 1}\n")
    with pytest.raises(UserError, match="zzz"):
        load_stage_config(_Cfg, p)
    with pytest.raises(UserError, match="key.sub=value"):
        apply_overrides({}, ["nonsense"])
    p.write_text("sub: [1,\n")
    with pytest.raises(UserError, match="line"):
        load_stage_config(_Cfg, p)


def test_lr_schedule():
    c = OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    f = [lr_factor(s, 14, c) for s in range(15)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == pytest.approx(1.0) and f[14] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[4:], f[5:]))
    assert lr_factor(100, 14, OptimConfig(schedule="constant")) == 1.0


# ------------------------------------------------------------------------------------- checkpoints

def test_flatten_roundtrip_of_optimizer_state():
    m = nn.Linear(3, 2)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors: dict = {}
    tree = flatten_state({"opt": opt.state_dict(), "arr": np.arange(3, dtype=np.uint32), "t": (1, "x")}, "s", tensors)
    json.dumps(tree)                                         # the tree is plain JSON
    back = unflatten_state(json.loads(json.dumps(tree)), tensors)
    opt2 = torch.optim.AdamW(nn.Linear(3, 2).parameters(), lr=1.0)
    opt2.load_state_dict(back["opt"])
    for k in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(opt2.state_dict()["state"][0][k], opt.state_dict()["state"][0][k])
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    assert back["arr"].dtype == np.uint32 and back["t"] == (1, "x")


def test_checkpoints_atomic_and_pruned(tmp_path):
    for s in (1, 2, 3, 4):
        save_checkpoint(tmp_path, s, {"w": torch.full((2,), float(s)), "step": s}, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (tmp_path / "step_00000009").mkdir()                     # an incomplete one is ignored
    step, state = load_checkpoint(latest_checkpoint(tmp_path))
    assert step == 4 and torch.equal(state["w"], torch.full((2,), 4.0))
    assert not list((tmp_path / "step_00000004").glob("*.pt"))


# --------------------------------------------------------------------------- exact in-process resume

class ToyTask(Task):
    """A little MLP regression with dropout, random batches and grad accumulation."""

    name = "toy"

    def __init__(self):
        self.calls = 0

    def build(self, trainer):
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.GELU(), nn.Linear(16, 1))
        trainer.add_unit("net", self.net, OptimConfig(lr=1e-2, warmup_steps=2))

    def train_step(self, trainer, step):
        def loss_fn(micro):
            g = trainer.generator("data", micro)
            x = torch.randn(8, 4, generator=g)
            y = x.sum(1, keepdim=True).sin()
            return ((self.net(x) - y) ** 2).mean(), {}
        self.calls += 1
        return trainer.standard_step(loss_fn)

    def export(self, trainer, directory):
        from relic.models.weights import save_pretrained
        save_pretrained(trainer.units["net"].weights(), directory, {"kind": "toy"})


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_in_process_is_exact(tmp_path, precision):
    loop = LoopConfig(steps=10, grad_accum=2, precision=precision, ema_decay=0.9, log_every=1, ckpt_every=4,
                      keep_last=5, progress=False)
    Trainer(ToyTask(), tmp_path / "a", loop).fit()
    full = [r["loss"] for r in read_metrics(tmp_path / "a")]
    # an interrupted run: stop after step 6 (checkpoint at 4), then resume
    short = LoopConfig(**{**loop.__dict__, "steps": 10})
    t = Trainer(ToyTask(), tmp_path / "b", short)
    t.task.build(t)
    t.out.mkdir(parents=True)
    for _ in range(6):
        t.task.train_step(t, t.step)
        t.step += 1
        t.log(t.step, {"loss": 0.0})                          # junk rows past the checkpoint get dropped
        if t.step == 4:
            t.save()
    task = ToyTask()
    Trainer(task, tmp_path / "b", short).fit(resume=True)
    assert task.calls == 6
    resumed = read_metrics(tmp_path / "b")
    assert [r["step"] for r in resumed] == list(range(1, 11))
    assert [r["loss"] for r in resumed][4:] == full[4:]       # bit-identical on the same machine
    a = load_checkpoint(latest_checkpoint(tmp_path / "a" / "checkpoints"))[1]
    b = load_checkpoint(latest_checkpoint(tmp_path / "b" / "checkpoints"))[1]
    for k, v in a["units"]["net"]["ema"].items():
        assert torch.equal(v, b["units"]["net"]["ema"][k])
    from relic.models.weights import load_state
    sd, cfg = load_state(tmp_path / "a" / "final")
    assert cfg == {"kind": "toy"} and "0.weight" in sd


# ------------------------------------------------------------------------------- SIGKILL + --resume

def _train_cmd(clips: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "relic.cli", "train", "vae", "--config", str(ROOT / "configs/smoke/vae.yaml"),
            f"data.clips={clips}", f"out={out}", f"loop.steps={steps}", "loop.ckpt_every=3", "loop.keep_last=10",
            "eval.frames=5", "loop.threads=1"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, synthetic_clips):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    steps = 12
    ref = subprocess.run(_train_cmd(synthetic_clips, tmp_path / "ref", steps), env=env, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]

    proc = subprocess.Popen(_train_cmd(synthetic_clips, tmp_path / "run", steps), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = tmp_path / "run" / "checkpoints" / "step_00000006" / "state.json"
    deadline = time.monotonic() + 600
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "run" / "final").exists()

    res = subprocess.run(_train_cmd(synthetic_clips, tmp_path / "run", steps) + ["--resume"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    a = read_metrics(tmp_path / "ref")
    b = read_metrics(tmp_path / "run")
    assert [r["step"] for r in b] == list(range(1, steps + 1))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=1e-5, atol=1e-6)
    from relic.models.weights import load_state
    wa, _ = load_state(tmp_path / "ref" / "final")
    wb, _ = load_state(tmp_path / "run" / "final")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_load(path):
    import importlib

    from relic.commands.train import STAGES

    name = path.stem.replace("_", "-")            # e.g. teacher_long.yaml is a teacher config
    stage = max((k for k in STAGES if name == k or name.startswith(k + "-")), key=len)
    module, cls, _ = STAGES[stage]
    cfg = load_stage_config(getattr(importlib.import_module(module), cls), path)
    assert cfg.out.startswith("runs/")


def test_cli_reports_bad_override_as_user_error(tmp_path, capsys):
    from relic.cli import main

    rc = main(["train", "vae", "--config", str(ROOT / "configs/smoke/vae.yaml"), "loop.nonsense=1"])
    assert rc == 2 and "nonsense" in capsys.readouterr().err


# --------------------------------------------------------------------------- per-module LR multipliers

def _two_part_net():
    torch.manual_seed(0)
    return nn.ModuleDict({"backbone": nn.Linear(4, 4), "cond": nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))})


def test_lr_mult_groups_and_schedule(tmp_path):
    net = _two_part_net()
    cfg = OptimConfig(lr=1e-3, warmup_steps=2, schedule="cosine", lr_mult={"cond": 10.0})
    groups = param_groups(net, cfg)
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]                    # base group first
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net["cond"].parameters()}
    t = Trainer(ToyTask(), tmp_path, LoopConfig(steps=10, progress=False))
    unit = t.add_unit("net", net, cfg)
    for _ in range(5):
        unit.optimizer.step()                                            # no grads: leaves the weights alone
        unit.scheduler.step()
    lrs = [g["lr"] for g in unit.optimizer.param_groups]
    assert lrs[1] == pytest.approx(10 * lrs[0]) and lrs[0] == pytest.approx(1e-3 * lr_factor(5, 10, cfg))


def test_lr_mult_scales_the_first_adam_update():
    """Adam's first step moves every parameter by ~lr (m/√v = ±1): the multiplied module moves 10× farther."""
    net = _two_part_net()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt = torch.optim.AdamW(param_groups(net, OptimConfig(lr=1e-3, weight_decay=0.0, lr_mult={"cond": 10})),
                            lr=1e-3, weight_decay=0.0)
    net["cond"](net["backbone"](torch.randn(8, 4))).square().sum().backward()
    opt.step()
    step = {k: (v.detach() - before[k]).abs() for k, v in net.named_parameters()}
    assert torch.allclose(step["backbone.weight"], torch.full((4, 4), 1e-3), rtol=1e-3)
    assert torch.allclose(step["cond.0.weight"], torch.full((4, 4), 1e-2), rtol=1e-3)


def test_lr_mult_rejects_unknown_prefix_and_bad_values():
    with pytest.raises(UserError, match="matches no trainable parameter"):
        param_groups(_two_part_net(), OptimConfig(lr_mult={"conditioning": 10}))
    with pytest.raises(UserError, match="must be > 0"):
        param_groups(_two_part_net(), OptimConfig(lr_mult={"cond": 0}))
    assert len(param_groups(_two_part_net(), OptimConfig(lr_mult={"cond.0": 2}))) == 2   # prefixes are dotted paths
