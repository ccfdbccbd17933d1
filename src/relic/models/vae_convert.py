"""Load official Wan-2.1 VAE weights into :class:`relic.models.vae.WanVAE`.

Two key formats are mapped, every key explicitly (built from the config, so any depth works):

- the original Wan-2.1 release (``Wan2.1_VAE.pth``): ``encoder.conv1``, ``encoder.downsamples.N``
  (residual blocks as ``residual.{0,2,3,6}`` + ``shortcut``, resamples as ``resample.1`` + ``time_conv``),
  ``encoder.middle.{0,1,2}``, ``encoder.head.{0,2}``, ``conv1`` / ``conv2`` (the quant convs), and the same
  for ``decoder.upsamples.N``;
- diffusers' ``AutoencoderKLWan``: ``encoder.down_blocks.N``, ``*.mid_block.{resnets,attentions}``,
  ``decoder.up_blocks.I.{resnets.J, upsamplers.0}``, ``conv_in/conv_out/norm_out``, ``quant_conv``.

A checkpoint that does not fit (missing key, unknown key, wrong shape) raises ONE :class:`UserError` listing
every problem (:func:`relic.models.weights.check_state_dict`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from relic.config import WAN21_LATENTS_MEAN, WAN21_LATENTS_STD, VAEConfig, wan21_vae_config
from relic.errors import UserError
from relic.models.vae import AttnBlock, Resample, ResBlock, WanVAE, check_vae_config
from relic.models.weights import check_state_dict, load_checked, load_state

# leaf names inside one block: (original, diffusers, ours)
_RES_LEAVES = [("residual.0.gamma", "norm1.gamma", "norm1.gamma"),
               ("residual.2.weight", "conv1.weight", "conv1.weight"),
               ("residual.2.bias", "conv1.bias", "conv1.bias"),
               ("residual.3.gamma", "norm2.gamma", "norm2.gamma"),
               ("residual.6.weight", "conv2.weight", "conv2.weight"),
               ("residual.6.bias", "conv2.bias", "conv2.bias")]
_SHORTCUT_LEAVES = [("shortcut.weight", "conv_shortcut.weight", "shortcut.weight"),
                    ("shortcut.bias", "conv_shortcut.bias", "shortcut.bias")]
_ATTN_LEAVES = [(n, n, n) for n in ("norm.gamma", "to_qkv.weight", "to_qkv.bias", "proj.weight", "proj.bias")]
_RESAMPLE_LEAVES = [("resample.1.weight", "resample.1.weight", "conv.weight"),
                    ("resample.1.bias", "resample.1.bias", "conv.bias")]
_TIME_LEAVES = [(n, n, n) for n in ("time_conv.weight", "time_conv.bias")]
_CONV_LEAVES = [(n, n, n) for n in ("weight", "bias")]


def _leaves(module: torch.nn.Module) -> list[tuple[str, str, str]]:
    if isinstance(module, ResBlock):
        return _RES_LEAVES + (_SHORTCUT_LEAVES if not isinstance(module.shortcut, torch.nn.Identity) else [])
    if isinstance(module, AttnBlock):
        return _ATTN_LEAVES
    if isinstance(module, Resample):
        return _RESAMPLE_LEAVES + (_TIME_LEAVES if module.mode.endswith("3d") else [])
    raise TypeError(type(module))


def key_maps(vae: WanVAE) -> tuple[dict[str, str], dict[str, str]]:
    """``(original -> ours, diffusers -> ours)`` for every weight of ``vae``.

    diffusers cannot express attention blocks inside the decoder levels (``attn_scales`` non-empty):
    those keys are absent from the diffusers map, so such a checkpoint is reported as missing keys.
    """
    orig: dict[str, str] = {}
    diff: dict[str, str] = {}

    def add(prefixes: tuple[str, str | None, str], leaves: list[tuple[str, str, str]]) -> None:
        po, pd, pr = prefixes
        for lo, ld, lr in leaves:
            orig[f"{po}{lo}"] = f"{pr}{lr}"
            if pd is not None:
                diff[f"{pd}{ld}"] = f"{pr}{lr}"

    for part in ("encoder", "decoder"):
        add((f"{part}.conv1.", f"{part}.conv_in.", f"{part}.conv_in."), _CONV_LEAVES)
        add((f"{part}.head.0.", f"{part}.norm_out.", f"{part}.norm_out."), [("gamma", "gamma", "gamma")])
        add((f"{part}.head.2.", f"{part}.conv_out.", f"{part}.conv_out."), _CONV_LEAVES)
        mid = getattr(vae, part).mid
        for i, dname in enumerate(("resnets.0", "attentions.0", "resnets.1")):
            add((f"{part}.middle.{i}.", f"{part}.mid_block.{dname}.", f"{part}.mid.{i}."), _leaves(mid[i]))
    add(("conv1.", "quant_conv.", "quant_conv."), _CONV_LEAVES)
    add(("conv2.", "post_quant_conv.", "post_quant_conv."), _CONV_LEAVES)

    for i, m in enumerate(vae.encoder.down):
        add((f"encoder.downsamples.{i}.", f"encoder.down_blocks.{i}.", f"encoder.down.{i}."), _leaves(m))

    level, res_j = 0, 0
    for i, m in enumerate(vae.decoder.up):
        if isinstance(m, ResBlock):
            dname: str | None = f"decoder.up_blocks.{level}.resnets.{res_j}."
            res_j += 1
        elif isinstance(m, Resample):
            dname = f"decoder.up_blocks.{level}.upsamplers.0."
            level, res_j = level + 1, 0
        else:
            dname = None
        add((f"decoder.upsamples.{i}.", dname, f"decoder.up.{i}."), _leaves(m))
    return orig, diff


def detect_format(sd: Mapping[str, torch.Tensor]) -> str:
    """``"relic"``, ``"original"`` or ``"diffusers"``, from telltale keys."""
    keys = set(sd)
    if any(k.startswith(("encoder.down.", "decoder.up.")) for k in keys):
        return "relic"
    if any(k.startswith(("encoder.downsamples.", "decoder.upsamples.", "encoder.middle.")) for k in keys):
        return "original"
    if any(k.startswith(("encoder.down_blocks.", "decoder.up_blocks.", "encoder.mid_block.")) for k in keys):
        return "diffusers"
    raise UserError("not a Wan VAE checkpoint: none of the original, diffusers or RELIC key names found")


def convert_state_dict(sd: Mapping[str, torch.Tensor], vae: WanVAE, fmt: str | None = None,
                       source: str = "VAE checkpoint") -> dict[str, torch.Tensor]:
    """Rename a Wan-2.1 VAE state dict (original / diffusers / relic format) to ``vae``'s keys, checked.

    Unknown keys are kept under their own name so that the check lists them; any missing key, unknown key
    or wrong shape raises one UserError listing all of them.
    """
    fmt = fmt or detect_format(sd)
    if fmt == "relic":
        out = dict(sd)
    else:
        orig, diff = key_maps(vae)
        mapping = orig if fmt == "original" else diff
        out = {mapping.get(k, k): v for k, v in sd.items()}
    check_state_dict(vae, out, source)
    return out


def vae_config_from_diffusers(cfg: Mapping, source: str = "config.json") -> VAEConfig:
    """A diffusers ``AutoencoderKLWan`` config dict -> :class:`VAEConfig` (Wan-2.1 variants only)."""
    if cfg.get("is_residual") or cfg.get("patch_size") not in (None, 1):
        raise UserError("this is a Wan-2.2-style VAE (residual blocks / patchified input); only the Wan-2.1 "
                        "VAE is supported", source=source)
    if cfg.get("decoder_base_dim") not in (None, cfg.get("base_dim", 96)):
        raise UserError("decoder_base_dim different from base_dim is not supported", source=source)
    if cfg.get("in_channels", 3) != 3 or cfg.get("out_channels", 3) != 3:
        raise UserError("only 3-channel (RGB) VAEs are supported", source=source)
    out = VAEConfig(
        z_dim=int(cfg.get("z_dim", 16)), base_dim=int(cfg.get("base_dim", 96)),
        dim_mult=tuple(cfg.get("dim_mult", (1, 2, 4, 4))), num_res_blocks=int(cfg.get("num_res_blocks", 2)),
        attn_scales=tuple(cfg.get("attn_scales", ())),
        temporal_downsample=tuple(bool(t) for t in cfg.get("temperal_downsample", (False, True, True))),
        dropout=float(cfg.get("dropout", 0.0)),
        latents_mean=tuple(cfg.get("latents_mean", WAN21_LATENTS_MEAN)),
        latents_std=tuple(cfg.get("latents_std", WAN21_LATENTS_STD)))
    check_vae_config(out, source)
    return out


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".pth":
        # The original release is a torch pickle; load it tensors-only (weights_only=True runs no code).
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure here is a bad user file
            raise UserError(f"cannot read the checkpoint with weights_only=True: {e}", source=str(path)) from None
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise UserError("expected a flat state dict of tensors", source=str(path))
        return sd
    return load_state(path)[0]


def load_wan_vae(path: str | os.PathLike, config: VAEConfig | None = None,
                 dtype: torch.dtype = torch.float32) -> WanVAE:
    """Load a Wan-2.1 VAE from any of the supported layouts.

    ``path`` is a RELIC directory (``config.json`` + ``model.safetensors``), a diffusers directory
    (``config.json`` with ``_class_name: AutoencoderKLWan`` + ``diffusion_pytorch_model.safetensors``, or
    a pipeline's ``vae/`` subfolder), or a single original-format file (``Wan2.1_VAE.pth`` / ``.safetensors``).
    ``config`` overrides the config (default: read from the directory, else the official Wan-2.1 config).
    """
    path = Path(path)
    if not path.exists():
        raise UserError("no such file or directory", source=str(path))
    if path.is_dir() and (path / "vae").is_dir() and not (path / "config.json").is_file():
        path = path / "vae"
    cfg = config
    if path.is_dir():
        cfg_path = path / "config.json"
        raw = None
        if cfg_path.is_file():
            try:
                raw = json.loads(cfg_path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise UserError(f"invalid JSON: {e}", source=str(cfg_path)) from None
        if raw is not None and raw.get("_class_name") == "AutoencoderKLWan":
            cfg = cfg or vae_config_from_diffusers(raw, source=str(cfg_path))
            sd, _ = load_state(path, "diffusion_pytorch_model.safetensors"
                               if (path / "diffusion_pytorch_model.safetensors").is_file() else None)
        elif raw is not None and config is None:
            return WanVAE.from_pretrained(path).to(dtype)
        else:
            sd, _ = load_state(path)
    else:
        sd = _read_weights(path)
    vae = WanVAE(cfg or wan21_vae_config())
    converted = convert_state_dict(sd, vae, source=str(path))
    load_checked(vae, converted, source=str(path))
    return vae.to(dtype)
