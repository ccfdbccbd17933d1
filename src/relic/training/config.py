"""Training configs: typed dataclasses read from YAML, with dotted command-line overrides.

A stage config is a dataclass (e.g. :class:`relic.training.vae.VAEStageConfig`) whose fields are nested
dataclasses or plain values. :func:`load_stage_config` reads a YAML file, applies overrides such as
``optim.lr=1e-4`` or ``model.vae.base_dim=16`` (the value is parsed as YAML, so ``1e-4``, ``[64, 64]``,
``null`` and ``true`` work), and builds the dataclass; an unknown key is a :class:`UserError` naming it.

Every stage shares :class:`OptimConfig` (AdamW and its learning-rate schedule) and :class:`LoopConfig`
(steps, accumulation, precision, EMA, seeding, logging and checkpoint cadence).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from relic.config import RelicConfig, config_from_dict, config_to_dict, get_preset
from relic.errors import UserError


@dataclass
class OptimConfig:
    """AdamW with linear warmup, then cosine decay to ``min_lr_ratio * lr`` (or a constant LR)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0        # max global grad norm (None: no clipping)
    # LR multipliers by parameter-name prefix, e.g. {action_encoder: 10, pose_encoder: 10}: modules that start
    # from zero (the conditioning encoders) learn faster than the backbone they steer. First match wins.
    lr_mult: dict = field(default_factory=dict)


@dataclass
class LoopConfig:
    """The common trainer's loop (see :mod:`relic.training.loop`).

    ``steps`` optimizer steps, each of ``grad_accum`` micro-batches. ``precision="bf16"`` runs forward
    passes under bf16 autocast (weights and optimizer state stay fp32); ``"auto"``: bf16 where the device has
    native bf16 kernels, else fp32 (:func:`relic.precision.resolve_precision`; on an AVX2-only CPU bf16 is
    several times slower than fp32). ``ema_decay`` keeps an EMA of the
    trainable weights (None: off); the EMA weights are the ones exported. Checkpoints every ``ckpt_every``
    steps (and at the end), the last ``keep_last`` kept. ``threads`` sets torch's intra-op threads.
    """

    steps: int = 1000
    grad_accum: int = 1
    precision: Literal["auto", "bf16", "fp32"] = "bf16"
    ema_decay: float | None = 0.999
    seed: int = 0
    log_every: int = 10
    sample_every: int = 0                 # sample videos / images every N steps (0: only at the end)
    eval_every: int = 0                   # stage evaluation (e.g. held-out PSNR) every N steps (0: at the end)
    ckpt_every: int = 200
    keep_last: int = 3
    threads: int | None = None
    progress: bool = True


def model_config(preset: str, overrides: dict | None, source: str = "model") -> RelicConfig:
    """A preset's :class:`RelicConfig` with nested ``overrides`` (e.g. ``{"vae": {"base_dim": 16}}``)."""
    base = config_to_dict(get_preset(preset))
    merged = _deep_merge(base, overrides or {}, source)
    return config_from_dict(RelicConfig, merged, source=source)


def _deep_merge(base: dict, over: dict, source: str) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v, f"{source}.{k}")
        else:
            out[k] = v
    return out


# ------------------------------------------------------------------------------------------ YAML + CLI

def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> (["optim", "lr"], 0.0001). The value is parsed as YAML."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like key.sub=value")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise UserError(f"override {text!r}: empty key component")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str) and _is_float(parsed):   # YAML 1.1 reads "1e-4" as a string
        parsed = float(parsed)
    return parts, parsed


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _fix_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _fix_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fix_floats(v) for v in obj]
    if isinstance(obj, str) and _is_float(obj) and any(c in obj for c in "eE") and not obj.isalpha():
        return float(obj)
    return obj


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set each dotted override in a nested dict (creating sub-dicts as needed)."""
    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise UserError(f"override {text!r}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("config file not found", source=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise UserError(f"{where}invalid YAML ({getattr(e, 'problem', e)})", source=str(path)) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError("expected a mapping at the top level", source=str(path))
    return _fix_floats(raw)


def load_stage_config(cls: type, path: str | Path | None, overrides: list[str] | None = None) -> Any:
    """Read ``path`` (YAML; None: defaults), apply dotted ``overrides`` and build the dataclass ``cls``."""
    raw = read_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, list(overrides or []))
    return config_from_dict(cls, raw, source=str(path) if path is not None else "config")


def to_dict(cfg: Any) -> dict:
    """A stage config as a JSON/YAML-ready dict (tuples become lists)."""
    return _lists(dataclasses.asdict(cfg))


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


__all__ = ["OptimConfig", "LoopConfig", "model_config", "load_stage_config", "apply_overrides",
           "parse_override", "read_yaml", "to_dict"]
