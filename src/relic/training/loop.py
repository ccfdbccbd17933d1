"""The common trainer shared by every stage.

A stage is a :class:`Task`: it builds its models, registers the trainable ones as *units* (module + AdamW
+ LR schedule + optional EMA) with :meth:`Trainer.add_unit`, and implements :meth:`Task.train_step`, which
computes losses, back-propagates and steps its units through the trainer's helpers. The trainer owns
everything else:

* deterministic seeding (:meth:`Trainer.generator` gives a generator derived from (seed, step, name), so
  the random draws of step ``s`` never depend on how the run got there);
* bf16 autocast (:meth:`Trainer.autocast`), gradient accumulation (:meth:`Trainer.standard_step`),
  gradient clipping, AdamW, warmup + cosine / constant LR (:class:`torch.optim.lr_scheduler.LambdaLR`),
  EMA of weights (:class:`torch.optim.swa_utils.AveragedModel`);
* tqdm progress (loss and throughput), TensorBoard scalars (``<out>/tb``), ``<out>/metrics.jsonl`` (one JSON
  object per logged step);
* checkpoints (:mod:`relic.training.checkpoint`) every ``ckpt_every`` steps and at the end, holding every
  unit's model, EMA, optimizer and scheduler state, the RNG states and the data position, so that
  ``resume=True`` continues exactly where the last checkpoint left off. Every stage draws its batches as a
  pure function of the step (dataset index ``(step · accum + micro) · batch + j``, or a generator seeded from
  the step), so the data position is the step (also recorded as ``samples_seen``); a task with other state
  returns it from :meth:`Task.state_dict`;
* the final export: :meth:`Task.export` writes ``<out>/final`` (a safetensors ``from_pretrained`` directory).

Engine modules do no I/O; this loop is where training I/O happens.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from relic.errors import UserError
from relic.fileio import write_json_atomic
from relic.precision import resolve_precision
from relic.training.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from relic.training.config import LoopConfig, OptimConfig


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """LR multiplier after ``step`` scheduler steps: linear warmup, then cosine to ``min_lr_ratio`` or constant."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(module: nn.Module, cfg: OptimConfig) -> list[dict]:
    """The module's trainable parameters as optimizer groups: one per ``cfg.lr_mult`` multiplier.

    A parameter whose name starts with a prefix of ``cfg.lr_mult`` gets ``lr = cfg.lr * mult`` (first matching
    prefix); the rest get ``cfg.lr``; the base group comes first. Raises UserError on a prefix that matches no
    trainable parameter (a typo would otherwise silently train at the base LR). No trainable parameter: ``[]``.
    """
    mults = {str(k): float(v) for k, v in (cfg.lr_mult or {}).items()}
    for k, v in mults.items():
        if not v > 0:
            raise UserError(f"optim.lr_mult[{k!r}] must be > 0, got {v}")
    buckets: dict[float, list[nn.Parameter]] = {}
    used = set()
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((k for k in mults if name == k or name.startswith(k + ".")), None)
        if prefix is not None:
            used.add(prefix)
        buckets.setdefault(1.0 if prefix is None else mults[prefix], []).append(p)
    unused = sorted(set(mults) - used)
    if unused:
        raise UserError(f"optim.lr_mult prefix {unused[0]!r} matches no trainable parameter")
    order = sorted(buckets, key=lambda m: m != 1.0)      # the base group first: it is the one logged as lr/<unit>
    return [{"params": buckets[m], "lr": cfg.lr * m} for m in order]


def ema_update(decay: float) -> Callable:
    """EMA step for :class:`AveragedModel` with warmup: the decay is ``min(decay, (1 + n) / (10 + n))``.

    (n = updates so far), so the average follows the weights closely early in training.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c.to(a.dtype), 1.0 - d)
            else:
                a.copy_(c)

    return update


@dataclass
class Unit:
    """One trainable module with its optimizer, LR schedule and (optional) EMA."""

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    optim: OptimConfig
    ema: AveragedModel | None = None

    def weights(self, ema: bool = True) -> nn.Module:
        """The EMA copy when there is one and ``ema``, else the live module."""
        return self.ema.module if (ema and self.ema is not None) else self.module


class Task(abc.ABC):
    """A training stage. Subclasses implement :meth:`build`, :meth:`train_step` and :meth:`export`."""

    name = "task"

    @abc.abstractmethod
    def build(self, trainer: "Trainer") -> None:
        """Create models and call ``trainer.add_unit`` for each trainable one."""

    @abc.abstractmethod
    def train_step(self, trainer: "Trainer", step: int) -> dict[str, float]:
        """One optimizer step (all micro-batches); returns scalars to log (``loss`` first)."""

    def samples_per_step(self) -> int:
        """Training samples consumed per optimizer step (for the throughput shown)."""
        return 1

    def evaluate(self, trainer: "Trainer", step: int) -> dict[str, float]:
        """Stage metrics (e.g. held-out PSNR); logged under ``eval/``."""
        return {}

    def sample(self, trainer: "Trainer", step: int) -> None:
        """Write sample videos / images (``trainer.out/samples``, TensorBoard)."""

    @abc.abstractmethod
    def export(self, trainer: "Trainer", directory: Path) -> None:
        """Write the final weights as a ``from_pretrained`` directory."""

    def state_dict(self) -> dict:
        """The data position and any other task state needed to resume exactly (JSON + tensors)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Trainer:
    """Runs a :class:`Task` for ``loop.steps`` optimizer steps in directory ``out``.

    Layout of ``out``: ``checkpoints/step_N/``, ``final/`` (the export), ``tb/`` (TensorBoard),
    ``metrics.jsonl``, ``samples/``, ``config.json`` (the stage config).
    """

    def __init__(self, task: Task, out: str | Path, loop: LoopConfig, config: dict | None = None):
        self.task = task
        self.out = Path(out)
        self.loop = loop
        self.config = config or {}
        self.units: dict[str, Unit] = {}
        self.step = 0                    # optimizer steps completed
        self._writer = None
        if loop.grad_accum < 1:
            raise UserError(f"loop.grad_accum must be >= 1, got {loop.grad_accum}")
        if loop.threads:
            torch.set_num_threads(int(loop.threads))
        seed_everything(loop.seed)

    # ------------------------------------------------------------------------------ units and helpers
    def add_unit(self, name: str, module: nn.Module, optim: OptimConfig, ema: bool = True,
                 total_steps: int | None = None) -> Unit:
        """Register a trainable module: AdamW over its trainable parameters, LambdaLR, EMA if configured.

        ``total_steps``: optimizer steps of this unit over the run, for the LR schedule (default ``loop.steps``).
        """
        groups = param_groups(module, optim)
        if not groups:
            raise ValueError(f"unit {name!r} has no trainable parameters")
        opt = torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                                weight_decay=optim.weight_decay)
        total = total_steps or self.loop.steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s, c=optim, n=total: lr_factor(s, n, c))
        avg = None
        if ema and self.loop.ema_decay is not None:
            avg = AveragedModel(module, multi_avg_fn=ema_update(self.loop.ema_decay), use_buffers=True)
            avg.requires_grad_(False)
        unit = Unit(name, module, opt, sched, optim, avg)
        self.units[name] = unit
        return unit

    def generator(self, *key: Any) -> torch.Generator:
        """A CPU generator seeded from (seed, step, *key): identical draws for a step however it is reached."""
        text = json.dumps([self.loop.seed, self.step, *map(str, key)])
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)
        return torch.Generator().manual_seed(seed)

    def np_rng(self, *key: Any) -> np.random.Generator:
        return np.random.default_rng(int(self.generator(*key).initial_seed()))

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the CPU (or CUDA) when ``loop.precision`` is (or resolves to) ``'bf16'``."""
        device = "cuda" if torch.cuda.is_available() and self._on_cuda() else "cpu"
        if resolve_precision(self.loop.precision, device) == "bf16":
            return torch.autocast(device_type=device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _on_cuda(self) -> bool:
        return any(p.is_cuda for u in self.units.values() for p in u.module.parameters())

    def optimizer_step(self, name: str) -> dict[str, float]:
        """Clip, step AdamW and the LR schedule of unit ``name``, zero its grads, update its EMA."""
        u = self.units[name]
        params = [p for g in u.optimizer.param_groups for p in g["params"]]
        out = {}
        if u.optim.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, u.optim.grad_clip)
            out[f"grad_norm/{name}"] = float(norm)
        out[f"lr/{name}"] = u.optimizer.param_groups[0]["lr"]
        u.optimizer.step()
        u.scheduler.step()
        u.optimizer.zero_grad(set_to_none=True)
        if u.ema is not None:
            u.ema.update_parameters(u.module)
        return out

    def standard_step(self, loss_fn: Callable[[int], tuple[torch.Tensor, dict[str, float]]],
                      units: list[str] | None = None) -> dict[str, float]:
        """``grad_accum`` micro-batches of ``loss_fn(micro)`` under autocast, averaged; then step ``units``."""
        n = self.loop.grad_accum
        logs: dict[str, float] = {}
        for m in range(n):
            with self.autocast():
                loss, parts = loss_fn(m)
            (loss.float() / n).backward()
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                logs[k] = logs.get(k, 0.0) + float(v) / n
        for name in units or list(self.units):
            logs.update(self.optimizer_step(name))
        return logs

    # ------------------------------------------------------------------------------------ logging
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out / "tb"))
        return self._writer

    def log(self, step: int, scalars: dict[str, float], prefix: str = "train") -> None:
        for k, v in scalars.items():
            self.writer.add_scalar(f"{prefix}/{k}", v, step)
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "split": prefix, **scalars}) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (ValueError, KeyError):
                continue                   # a line cut by the kill
        from relic.fileio import write_text_atomic
        write_text_atomic(path, "".join(x + "\n" for x in keep))

    # ------------------------------------------------------------------------------------ checkpoints
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def state_dict(self) -> dict:
        units = {}
        for name, u in self.units.items():
            units[name] = {
                "model": u.module.state_dict(),
                "ema": u.ema.state_dict() if u.ema is not None else None,
                "optimizer": u.optimizer.state_dict(),
                "scheduler": u.scheduler.state_dict(),
            }
        data = {"step": self.step,
                "samples_seen": self.step * self.loop.grad_accum * self.task.samples_per_step()}
        return {"step": self.step, "units": units, "rng": rng_state(), "data_position": data,
                "task": self.task.state_dict(), "config": json.dumps(self.config)}

    def load_state_dict(self, state: dict) -> None:
        missing = sorted(set(self.units) - set(state["units"]))
        if missing:
            raise UserError(f"checkpoint has no state for unit(s) {', '.join(missing)}")
        for name, u in self.units.items():
            s = state["units"][name]
            u.module.load_state_dict(s["model"])
            if u.ema is not None:
                if s["ema"] is None:
                    raise UserError(f"checkpoint of unit {name!r} has no EMA but loop.ema_decay is set")
                u.ema.load_state_dict(s["ema"])
            u.optimizer.load_state_dict(s["optimizer"])
            u.scheduler.load_state_dict(s["scheduler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        self.task.load_state_dict(state["task"])

    def save(self) -> Path:
        return save_checkpoint(self.ckpt_dir, self.step, self.state_dict(), keep_last=self.loop.keep_last)

    def resume(self) -> bool:
        """Load the latest checkpoint under ``out/checkpoints``; False when there is none."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            return False
        _, state = load_checkpoint(path)
        self.load_state_dict(state)
        self._truncate_metrics(self.step)
        return True

    # ------------------------------------------------------------------------------------------ run
    def fit(self, resume: bool = False) -> Path:
        """Build the task, optionally resume, train to ``loop.steps``, checkpoint, export. Returns ``out/final``."""
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out / "config.json", self.config)
        self.task.build(self)
        resumed = self.resume() if resume else False
        if not resumed:
            self._truncate_metrics(-1)
        from tqdm import tqdm

        loop = self.loop
        bar = tqdm(total=loop.steps, initial=self.step, desc=f"train {self.task.name}", disable=not loop.progress,
                   dynamic_ncols=True, unit="step")
        t0, n0 = time.perf_counter(), self.step
        for m in self.units.values():
            m.module.train()
        while self.step < loop.steps:
            step = self.step
            logs = self.task.train_step(self, step)
            self.step = step + 1
            if not all(math.isfinite(v) for v in logs.values()):
                raise RuntimeError(f"non-finite training scalars at step {self.step}: {logs}")
            elapsed = time.perf_counter() - t0
            rate = (self.step - n0) * self.task.samples_per_step() / max(elapsed, 1e-9)
            bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4g}", samples_s=f"{rate:.2f}")
            bar.update(1)
            if self.step % max(1, loop.log_every) == 0 or self.step == loop.steps or self.step == 1:
                self.log(self.step, {**logs, "samples_per_s": rate})
            if loop.eval_every and self.step % loop.eval_every == 0 and self.step != loop.steps:
                self._evaluate()
            if loop.sample_every and self.step % loop.sample_every == 0 and self.step != loop.steps:
                self.task.sample(self, self.step)
            if self.step % max(1, loop.ckpt_every) == 0 or self.step == loop.steps:
                self.save()
        bar.close()
        self._evaluate()
        self.task.sample(self, self.step)
        final = self.out / "final"
        self.task.export(self, final)
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        return final

    def _evaluate(self) -> dict[str, float]:
        for m in self.units.values():
            m.module.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self, self.step)
        for m in self.units.values():
            m.module.train()
        if metrics:
            self.log(self.step, metrics, prefix="eval")
            write_json_atomic(self.out / "eval.json", {"step": self.step, **metrics})
        return metrics


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def read_metrics(out: str | Path, split: str = "train") -> list[dict]:
    """The rows of ``<out>/metrics.jsonl`` for ``split``."""
    path = Path(out) / "metrics.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("split") == split:
            rows.append(row)
    return rows
