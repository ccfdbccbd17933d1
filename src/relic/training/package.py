"""Assemble a shippable model directory from the stage exports (``relic train package``).

The stages each export one network (``<out>/final``): the VAE (stage 0a), the tiny decoder (0b) and the
student DiT (ODE init 2b or DMD 3). :func:`package_model` puts them together as the model directory that
:class:`relic.runtime.stream.StreamingSession` loads (:func:`relic.runtime.stream.save_model_dir`:
``config.json`` + ``dit`` / ``vae`` / ``tiny_decoder`` safetensors), with the preset's runtime settings
(resolution, memory, sampler, text encoder) and each network's own config, optionally cast to bf16
(half the size; the runtime computes in bf16 on CPU anyway).

::

    relic train package --preset relic-tiny --dit runs/tiny/dmd/final --vae runs/tiny/vae/final \\
        --tiny-decoder runs/tiny/tiny_decoder/final --dtype bf16 --out weights/relic-tiny

Any of the three may also come from an existing model directory (``--vae weights/relic-tiny``): a new student
is then shipped with the decoders of a shipped model without exporting them first.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import torch

from relic.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _load(cls, directory: str, what: str):
    """The network ``what`` from a stage export directory or from a model directory (``save_model_dir``)."""
    from relic.runtime.stream import DIT_FILE, TINY_FILE, VAE_FILE, load_model_dir

    d = Path(directory)
    if not (d / "config.json").is_file():
        raise UserError(f"not a {what} directory (no config.json)", source=str(d))
    if (d / DIT_FILE).is_file() and (d / VAE_FILE).is_file():       # a model directory: take one network
        if what == "tiny decoder" and not (d / TINY_FILE).is_file():
            raise UserError(f"the model directory has no {TINY_FILE}", source=str(d))
        _, dit, vae, tiny = load_model_dir(d, need_tiny=False)
        return {"DiT": dit, "VAE": vae, "tiny decoder": tiny}[what]
    if what == "VAE":
        from relic.models.autoencoder import load_vae
        return load_vae(d)
    return cls.from_pretrained(d)


def _cast(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    return module.to(dtype) if dtype != torch.float32 else module


def package_model(out: str, preset: str, dit: str, vae: str, tiny_decoder: str | None = None,
                  dtype: str = "bf16", memory: dict | None = None, extra: dict | None = None,
                  sampler: dict | None = None) -> Path:
    """Write the model directory ``out`` (atomically: built beside it, then renamed into place).

    Args:
        preset: the runtime settings (``relic.config.PRESETS``); the networks' configs replace its
            ``dit`` / ``vae`` / ``tiny_decoder`` so the weights always load.
        dit, vae, tiny_decoder: stage export directories (``DiT`` / ``WanVAE`` / ``TinyDecoder``).
        dtype: ``bf16`` or ``fp32`` storage.
        memory: overrides of the preset's :class:`relic.config.MemoryConfig` fields.
        sampler: overrides of the preset's :class:`relic.config.SamplerConfig` fields: the runtime must sample
            as the student was trained (e.g. ``context_noise`` of a student distilled with ``model.sampler``).
        extra: JSON-ready provenance written to ``<out>/provenance.json`` (e.g. the stage directories).
    """
    from relic.config import MemoryConfig, SamplerConfig, config_from_dict, config_to_dict, get_preset
    from relic.models.dit import DiT
    from relic.models.tiny_decoder import TinyDecoder
    from relic.models.vae import WanVAE
    from relic.runtime.stream import load_model_dir, save_model_dir

    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cfg = get_preset(preset)
    d = _load(DiT, dit, "DiT")
    v = _load(WanVAE, vae, "VAE")
    t = _load(TinyDecoder, tiny_decoder, "tiny decoder") if tiny_decoder else None
    if t is not None and t.config.z_dim != v.config.z_dim:
        raise UserError(f"the tiny decoder takes {t.config.z_dim} latent channels, the VAE gives {v.config.z_dim}",
                        source=str(tiny_decoder))
    if d.cfg.in_channels != v.config.z_dim:
        raise UserError(f"the DiT takes {d.cfg.in_channels} latent channels, the VAE gives {v.config.z_dim}",
                        source=str(dit))
    mem = cfg.memory
    if memory:
        mem = config_from_dict(MemoryConfig, {**config_to_dict(mem), **memory}, source="memory overrides")
    smp = cfg.sampler
    if sampler:
        smp = config_from_dict(SamplerConfig, {**config_to_dict(smp), **sampler}, source="sampler overrides")
    cfg = dataclasses.replace(cfg, dit=d.cfg, vae=v.config, memory=mem, sampler=smp,
                              tiny_decoder=t.config if t is not None else cfg.tiny_decoder)
    dst = Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        dt = DTYPES[dtype]
        save_model_dir(tmp, cfg, _cast(d, dt), _cast(v, dt), _cast(t, dt) if t is not None else None)
        if extra is not None:
            (tmp / "provenance.json").write_text(json.dumps(extra, indent=1) + "\n", encoding="utf-8")
        load_model_dir(tmp, need_tiny=t is not None)          # what we ship must load
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def size_bytes(directory: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).iterdir() if p.is_file())
