"""Weights on disk: safetensors + config.json directories, key remapping and strict shape checks.

Generic pieces shared by every model (DiT, VAE, tiny decoder):

- :func:`save_pretrained` writes ``<filename>`` (safetensors) and ``config.json`` into a directory, each
  atomically (temporary sibling, then rename; the weights first, the config last, so a directory with a
  ``config.json`` always has its weights).
- :func:`load_state` reads a safetensors file, a sharded set (``*.safetensors.index.json``) or every
  ``*.safetensors`` file of a directory, plus ``config.json`` when present. Pickle checkpoints
  (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) are refused: they can run code when loaded.
- :func:`remap_state_dict` renames keys with ordered regex rules (used to read the original Wan and the
  diffusers key formats).
- :func:`check_state_dict` compares a state dict with a model and raises ONE :class:`UserError` listing
  every missing key, unexpected key and wrong shape; keys matching ``new_ok`` patterns (modules the
  checkpoint cannot know about, such as RELIC's zero-initialized action/pose encoders) are reported as
  new instead of missing. :func:`load_checked` does the check and the load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from relic.errors import UserError
from relic.fileio import atomic_path, write_json_atomic

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

StateDict = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------- saving

def save_pretrained(model: torch.nn.Module | Mapping[str, torch.Tensor], directory: str | os.PathLike,
                    config: Any, *, filename: str = WEIGHTS_NAME) -> Path:
    """Write ``model``'s weights to ``directory/filename`` (safetensors) and ``config`` to ``config.json``.

    ``model`` is a module or a state dict; ``config`` a dataclass or a JSON-ready dict (``None`` writes no
    config). Both files are written atomically, the weights first. Returns the directory.
    """
    directory = Path(directory)
    sd = model.state_dict() if isinstance(model, torch.nn.Module) else dict(model)
    if isinstance(model, torch.nn.Module) and _is_sharded(sd):
        # FSDP2 (relic.training.distributed): gather the full weights (a collective); rank 0 writes them
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if torch.distributed.get_rank() != 0:
            return directory
    tensors = {k: v.detach().contiguous().cpu() for k, v in sd.items()}
    with atomic_path(directory / filename) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    if config is not None:
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        write_json_atomic(directory / CONFIG_NAME, cfg)
    return directory


def _is_sharded(sd: Mapping[str, Any]) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(v, DTensor) for v in sd.values())


# ---------------------------------------------------------------------------------------------- loading

def _refuse_pickle(path: Path) -> None:
    raise UserError("refusing to load a pickle checkpoint (it can execute code); convert it to "
                    "safetensors first", source=str(path))


def _load_file(path: Path) -> StateDict:
    if path.suffix in PICKLE_SUFFIXES:
        _refuse_pickle(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"cannot read safetensors file: {e}", source=str(path)) from None


def _weight_files(directory: Path, filename: str | None) -> list[Path]:
    if filename is not None:
        path = directory / filename
        if path.is_file():
            return [path]
        index = directory / f"{filename}.index.json"
        if not index.is_file():
            stem = Path(filename).stem
            cands = sorted(directory.glob(f"{stem}*.safetensors.index.json"))
            index = cands[0] if len(cands) == 1 else index
        if index.is_file():
            return _shards_from_index(index)
        pickles = [p for p in sorted(directory.iterdir()) if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            _refuse_pickle(pickles[0])
        raise UserError(f"no weights file {filename!r} (nor a sharded index) in the directory",
                        source=str(directory))
    indexes = sorted(directory.glob("*.safetensors.index.json"))
    if len(indexes) == 1:
        return _shards_from_index(indexes[0])
    files = sorted(directory.glob("*.safetensors"))
    if files:
        return files
    pickles = [p for p in sorted(directory.iterdir()) if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        _refuse_pickle(pickles[0])
    raise UserError("no .safetensors weights in the directory", source=str(directory))


def _shards_from_index(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"bad sharded-weights index: {e}", source=str(index)) from None
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (index.parent / s).is_file()]
    if missing:
        raise UserError(f"missing shard file(s): {', '.join(missing)}", source=str(index))
    return [index.parent / s for s in shards]


def load_config(directory: str | os.PathLike) -> dict | None:
    """``directory/config.json`` as a dict, or None when there is none."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"invalid JSON: {e}", source=str(path)) from None
    if not isinstance(cfg, dict):
        raise UserError("expected a JSON object", source=str(path))
    return cfg


def load_state(path: str | os.PathLike, filename: str | None = None) -> tuple[StateDict, dict | None]:
    """Read weights (and ``config.json``) from a directory or a single ``.safetensors`` file.

    In a directory, ``filename`` names the weights file (or its ``.index.json`` shard index); with
    ``filename=None`` a single shard index, or else every ``*.safetensors`` file, is read. Returns
    ``(state_dict, config dict or None)``. Tensors keep their stored dtype, on the CPU.
    """
    path = Path(path)
    if not path.exists():
        raise UserError("no such file or directory", source=str(path))
    if path.is_file():
        return _load_file(path), load_config(path.parent)
    sd: StateDict = {}
    for f in _weight_files(path, filename):
        part = _load_file(f)
        dup = sorted(set(part) & set(sd))
        if dup:
            raise UserError(f"key(s) stored twice across weight files: {', '.join(dup)}", source=str(f))
        sd.update(part)
    return sd, load_config(path)


# -------------------------------------------------------------------------------------------- remapping

Rule = tuple[str, str | None]


def remap_state_dict(sd: Mapping[str, torch.Tensor], rules: Sequence[Rule], *,
                     source: str = "state dict") -> StateDict:
    """Rename keys with ordered regex rules.

    Each key is rewritten by the FIRST rule ``(pattern, replacement)`` whose pattern fully matches it
    (``re.fullmatch``; the replacement may use ``\\1`` groups); ``replacement=None`` drops the key. Keys no
    rule matches are kept unchanged (so :func:`check_state_dict` reports them as unexpected). Two keys
    mapping to the same name raise a :class:`UserError`.
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    out: StateDict = {}
    origin: dict[str, str] = {}
    for key, value in sd.items():
        new = key
        for pat, repl in compiled:
            m = pat.fullmatch(key)
            if m:
                new = None if repl is None else m.expand(repl)
                break
        if new is None:
            continue
        if new in out:
            raise UserError(f"keys {origin[new]!r} and {key!r} both map to {new!r}", source=source)
        out[new] = value
        origin[new] = key
    return out


# ------------------------------------------------------------------------------------------ checking

@dataclass
class LoadReport:
    """What a checked load did: every model key was loaded except ``new`` (kept at initialization)."""

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = f"loaded {len(self.loaded)} tensors"
        if self.new:
            s += f"; new, zero-init: {', '.join(self.new)}"
        return s


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_state_dict(model: torch.nn.Module | Mapping[str, torch.Tensor], sd: Mapping[str, torch.Tensor],
                     source: str, *, new_ok: Iterable[str] = ()) -> LoadReport:
    """Compare ``sd`` with ``model``'s state dict; raise ONE :class:`UserError` listing every problem.

    Problems are: model keys absent from ``sd`` (unless they match one of the ``new_ok`` regex patterns,
    matched at the start of the key with ``re.match``: those are reported in ``LoadReport.new``), keys
    in ``sd`` the model does not have, and tensors whose shape differs.
    """
    ref = model.state_dict() if isinstance(model, torch.nn.Module) else model
    patterns = [re.compile(p) for p in new_ok]
    missing, new = [], []
    for k in ref:
        if k not in sd:
            (new if any(p.match(k) for p in patterns) else missing).append(k)
    unexpected = [k for k in sd if k not in ref]
    shapes = [f"{k} {_shape(sd[k])} vs model {_shape(ref[k])}"
              for k in ref if k in sd and tuple(sd[k].shape) != tuple(ref[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {', '.join(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {', '.join(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} wrong shape(s): {', '.join(shapes)}")
    if parts:
        raise UserError("weights do not fit the model: " + "; ".join(parts), source=source)
    return LoadReport(loaded=[k for k in ref if k in sd], new=new)


def load_checked(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], source: str, *,
                 new_ok: Iterable[str] = ()) -> LoadReport:
    """:func:`check_state_dict`, then copy the tensors into ``model`` (cast to each parameter's dtype)."""
    report = check_state_dict(model, sd, source, new_ok=new_ok)
    model.load_state_dict(dict(sd), strict=False)
    return report



class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for a module built from one config dataclass.

    The class sets ``config_class`` (the dataclass) and keeps its config in ``self.config``; the directory
    holds ``model.safetensors`` + ``config.json``, loaded strictly (every key, every shape).
    """

    config_class: type

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``model.safetensors`` + ``config.json`` (``self.config``) into ``directory``."""
        save_pretrained(self, directory, self.config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike):
        """Load a directory written by :meth:`save_pretrained` (strict: every key, every shape)."""
        from relic.config import config_from_dict

        sd, cfg = load_state(directory)
        if cfg is None:
            raise UserError("no config.json beside the weights", source=str(directory))
        model = cls(config_from_dict(cls.config_class, cfg, source=f"{directory}/config.json"))
        load_checked(model, sd, source=str(directory))
        return model

# ------------------------------------------------------------------------- Wan-2.1 DiT key formats
#
# Our DiT uses the ORIGINAL Wan-2.1 parameter names, so an original checkpoint maps one to one.
# diffusers' WanTransformer3DModel renames them; DIFFUSERS_TO_WAN maps every diffusers key (note the
# swapped norms: diffusers' blocks.N.norm2 is the cross-attention norm, Wan's norm3).

_ATTN = r"(to_q|to_k|to_v|to_out\.0|norm_q|norm_k)"
_ATTN_NAMES = {"to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "o", "norm_q": "norm_q", "norm_k": "norm_k"}

DIFFUSERS_TO_WAN: list[Rule] = [
    (r"patch_embedding\.(weight|bias)", r"patch_embedding.\1"),
    (r"condition_embedder\.time_embedder\.linear_1\.(weight|bias)", r"time_embedding.0.\1"),
    (r"condition_embedder\.time_embedder\.linear_2\.(weight|bias)", r"time_embedding.2.\1"),
    (r"condition_embedder\.time_proj\.(weight|bias)", r"time_projection.1.\1"),
    (r"condition_embedder\.text_embedder\.linear_1\.(weight|bias)", r"text_embedding.0.\1"),
    (r"condition_embedder\.text_embedder\.linear_2\.(weight|bias)", r"text_embedding.2.\1"),
    *[(rf"blocks\.(\d+)\.attn1\.{re.escape(d)}\.(weight|bias)", rf"blocks.\1.self_attn.{o}.\2")
      for d, o in _ATTN_NAMES.items()],
    *[(rf"blocks\.(\d+)\.attn2\.{re.escape(d)}\.(weight|bias)", rf"blocks.\1.cross_attn.{o}.\2")
      for d, o in _ATTN_NAMES.items()],
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"blocks.\1.norm3.\2"),
    (r"blocks\.(\d+)\.ffn\.net\.0\.proj\.(weight|bias)", r"blocks.\1.ffn.0.\2"),
    (r"blocks\.(\d+)\.ffn\.net\.2\.(weight|bias)", r"blocks.\1.ffn.2.\2"),
    (r"blocks\.(\d+)\.scale_shift_table", r"blocks.\1.modulation"),
    (r"scale_shift_table", r"head.modulation"),
    (r"proj_out\.(weight|bias)", r"head.head.\1"),
]

WAN_TO_DIFFUSERS: list[Rule] = [
    (r"patch_embedding\.(weight|bias)", r"patch_embedding.\1"),
    (r"time_embedding\.0\.(weight|bias)", r"condition_embedder.time_embedder.linear_1.\1"),
    (r"time_embedding\.2\.(weight|bias)", r"condition_embedder.time_embedder.linear_2.\1"),
    (r"time_projection\.1\.(weight|bias)", r"condition_embedder.time_proj.\1"),
    (r"text_embedding\.0\.(weight|bias)", r"condition_embedder.text_embedder.linear_1.\1"),
    (r"text_embedding\.2\.(weight|bias)", r"condition_embedder.text_embedder.linear_2.\1"),
    *[(rf"blocks\.(\d+)\.self_attn\.{o}\.(weight|bias)", rf"blocks.\1.attn1.{d}.\2") for d, o in _ATTN_NAMES.items()],
    *[(rf"blocks\.(\d+)\.cross_attn\.{o}\.(weight|bias)", rf"blocks.\1.attn2.{d}.\2") for d, o in _ATTN_NAMES.items()],
    (r"blocks\.(\d+)\.norm3\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"blocks\.(\d+)\.ffn\.0\.(weight|bias)", r"blocks.\1.ffn.net.0.proj.\2"),
    (r"blocks\.(\d+)\.ffn\.2\.(weight|bias)", r"blocks.\1.ffn.net.2.\2"),
    (r"blocks\.(\d+)\.modulation", r"blocks.\1.scale_shift_table"),
    (r"head\.modulation", r"scale_shift_table"),
    (r"head\.head\.(weight|bias)", r"proj_out.\1"),
    (r"(action_encoder|pose_encoder)\..*", None),   # RELIC-only modules have no diffusers counterpart
]

# RELIC's encoders: absent from Wan checkpoints, kept at their zero initialization.
DIT_NEW_OK = (r"action_encoder\.", r"pose_encoder\.", r"ray_encoder\.", r"warp_encoder\.")


def dit_key_format(sd: Mapping[str, torch.Tensor]) -> str:
    """"diffusers" if the keys are diffusers' WanTransformer3DModel names, else "wan" (original/RELIC)."""
    diffusers = any(k.startswith(("condition_embedder.", "proj_out.")) or ".attn1." in k for k in sd)
    return "diffusers" if diffusers else "wan"


def dit_state_from_diffusers(sd: Mapping[str, torch.Tensor], source: str = "state dict") -> StateDict:
    """diffusers WanTransformer3DModel state dict -> our (original Wan) names."""
    return remap_state_dict(sd, DIFFUSERS_TO_WAN, source=source)


def dit_state_to_diffusers(sd: Mapping[str, torch.Tensor], source: str = "state dict") -> StateDict:
    """Our state dict -> diffusers WanTransformer3DModel names (RELIC's encoders are dropped)."""
    return remap_state_dict(sd, WAN_TO_DIFFUSERS, source=source)


def dit_config_from_json(cfg: dict, source: str = "config.json"):
    """A DiTConfig from our config.json, a RelicConfig's ``dit``, diffusers' or original Wan's config."""
    from relic.config import DiTConfig, config_from_dict

    if "dit" in cfg and isinstance(cfg["dit"], dict):
        return config_from_dict(DiTConfig, cfg["dit"], f"{source}: dit")
    cls = cfg.get("_class_name")
    if cls == "WanTransformer3DModel" or "num_attention_heads" in cfg:
        if cfg.get("image_dim") is not None or cfg.get("added_kv_proj_dim") is not None:
            raise UserError("Wan image-to-video checkpoints with a CLIP image branch are not supported "
                            "(RELIC conditions on a clean first latent instead)", source=source)
        qk = cfg.get("qk_norm", "rms_norm_across_heads")
        if qk not in (None, "rms_norm_across_heads"):
            raise UserError(f"unsupported qk_norm {qk!r}", source=source)
        heads = int(cfg.get("num_attention_heads", 40))
        return DiTConfig(
            patch_size=tuple(cfg.get("patch_size", (1, 2, 2))), in_channels=cfg.get("in_channels", 16),
            out_channels=cfg.get("out_channels") or cfg.get("in_channels", 16),
            dim=heads * int(cfg.get("attention_head_dim", 128)), ffn_dim=cfg.get("ffn_dim", 13824),
            freq_dim=cfg.get("freq_dim", 256), text_dim=cfg.get("text_dim", 4096), num_heads=heads,
            num_layers=cfg.get("num_layers", 40), qk_norm=True, cross_attn_norm=cfg.get("cross_attn_norm", True),
            eps=cfg.get("eps", 1e-6), rope_max_seq_len=cfg.get("rope_max_seq_len", 1024))
    if cls == "WanModel" or "in_dim" in cfg:
        if cfg.get("model_type", "t2v") not in ("t2v", "i2v_latent"):
            raise UserError(f"unsupported Wan model_type {cfg.get('model_type')!r} (only t2v)", source=source)
        return DiTConfig(
            patch_size=tuple(cfg.get("patch_size", (1, 2, 2))), in_channels=cfg.get("in_dim", 16),
            out_channels=cfg.get("out_dim", 16), dim=cfg.get("dim", 2048), ffn_dim=cfg.get("ffn_dim", 8192),
            freq_dim=cfg.get("freq_dim", 256), text_dim=cfg.get("text_dim", 4096), num_heads=cfg.get("num_heads", 16),
            num_layers=cfg.get("num_layers", 32), qk_norm=cfg.get("qk_norm", True),
            cross_attn_norm=cfg.get("cross_attn_norm", True), eps=cfg.get("eps", 1e-6))
    public = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return config_from_dict(DiTConfig, public, source)


# Per-block output projections: zeroing them makes a block (and its action offset) exactly the identity.
_BLOCK_OUTPUTS = ("self_attn.o.", "cross_attn.o.", "ffn.2.")
_PER_BLOCK = (r"blocks\.(\d+)\.(.*)", r"action_encoder\.proj\.(\d+)\.(.*)", r"action_encoder\.coord_proj\.(\d+)\.(.*)",
              r"pose_encoder\.proj\.(\d+)\.(.*)", r"ray_encoder\.proj\.(\d+)\.(.*)")


def grow_depth(sd: Mapping[str, torch.Tensor], old_layers: int, new_layers: int) -> StateDict:
    """A DiT state dict of ``old_layers`` blocks -> one of ``new_layers`` = m · old_layers whose forward is the old
    one exactly (block expansion, as LLaMA Pro grows a trained network).

    Block i becomes block m·i, followed by m − 1 copies of it whose attention and FFN output projections and
    action and ray offsets (``action_encoder.proj`` / ``coord_proj``, ``ray_encoder.proj``) are zero, so each
    copy adds exactly nothing to the residual stream until training moves those weights; their other weights
    (and the pose encoder's Q/K projections for them) start as the original block's, so the gradients into the
    zeroed outputs are not zero.
    Every per-block tensor is renumbered; everything else is kept as is.
    """
    if old_layers < 1 or new_layers % old_layers:
        raise ValueError(f"can only grow {old_layers} blocks to a multiple of them, not {new_layers}")
    m = new_layers // old_layers
    out: StateDict = {}
    for key, t in sd.items():
        match = next((mm for mm in (re.fullmatch(p, key) for p in _PER_BLOCK) if mm), None)
        if match is None:
            out[key] = t
            continue
        i, rest = int(match.group(1)), match.group(2)
        prefix = key[:match.start(1)]
        for j in range(m):
            copy = t.clone()
            if j and (prefix.startswith(("action_encoder.", "ray_encoder.")) or
                      (prefix == "blocks." and rest.startswith(_BLOCK_OUTPUTS))):
                copy.zero_()
            out[f"{prefix}{m * i + j}.{rest}"] = copy
    return out
