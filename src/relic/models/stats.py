"""Parameter counts and matmul FLOPs of the DiT, from the config alone (no model is built).

``python -m relic.models.stats`` prints the markdown table of docs/models.md for the three presets.
The formulas are checked against instantiated tiny models (parameters) and against
``torch.utils.flop_counter.FlopCounterMode`` (FLOPs) in tests/models/test_dit_stats.py.

FLOPs count matrix multiplications only (2 per multiply-add), as FlopCounterMode does; norms,
activations, RoPE rotation and softmax are a few percent more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from relic.config import PRESETS, DiTConfig, RelicConfig


def _linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def dit_param_count(cfg: DiTConfig) -> dict[str, int]:
    """Parameters by part: ``wan`` (the Wan-2.1 network), ``action``, ``pose`` and ``total``."""
    d, p = cfg.dim, math.prod(cfg.patch_size)
    qk = 2 * d if cfg.qk_norm else 0
    attn = 4 * _linear(d, d) + qk
    block = (2 * attn + (2 * d if cfg.cross_attn_norm else 0)
             + _linear(d, cfg.ffn_dim) + _linear(cfg.ffn_dim, d) + 6 * d)
    wan = (cfg.in_channels * p * d + d                                     # patch embedding
           + _linear(cfg.text_dim, d) + _linear(d, d)                       # text embedding
           + _linear(cfg.freq_dim, d) + _linear(d, d) + _linear(d, 6 * d)   # time embedding + projection
           + cfg.num_layers * block
           + _linear(d, cfg.out_channels * p) + 2 * d)                      # head
    ah, ph = cfg.action_hidden, cfg.pose_hidden
    action = (_linear(cfg.action_dim * cfg.temporal_compression, ah) + _linear(ah, ah)
              + cfg.num_layers * _linear(ah, d))
    pose = _linear(12, ph) + _linear(ph, ph) + cfg.num_layers * _linear(ph, 2 * d)
    return {"wan": wan, "action": action, "pose": pose, "total": wan + action + pose}


def dit_flops(cfg: DiTConfig, tokens_per_frame: int, frames: int = 1, context_tokens: int = 0,
              text_len: int = 0, *, prepared_text: bool = True, actions: bool = True, pose: bool = True) -> int:
    """Matmul FLOPs of one ``DiT.forward`` over ``frames`` latent frames of ``tokens_per_frame`` tokens.

    ``context_tokens``: keys/values from ``kv_context`` (same for every layer); ``text_len``: text tokens;
    ``prepared_text``: the text k/v come from :meth:`DiT.prepare_text` (computed once per prompt, not
    counted) instead of raw text states.
    """
    d, L, hd = cfg.dim, cfg.num_layers, cfg.dim // cfg.num_heads
    n = tokens_per_frame * frames
    p = math.prod(cfg.patch_size)
    macs = n * cfg.in_channels * p * d                                     # patch embedding
    macs += frames * (cfg.freq_dim * d + d * d + d * 6 * d)                # time embedding + projection
    macs += (n + context_tokens) * 3 * (hd // 2)                           # RoPE angles (pos @ freq table)
    per_block = (4 * n * d * d                                             # self-attn q k v o
                 + 2 * n * (context_tokens + n) * d                        # QK^T and AV
                 + 2 * n * d * d + 2 * n * text_len * d                    # cross-attn q o, QK^T AV
                 + 2 * n * d * cfg.ffn_dim)                                # FFN
    macs += L * per_block
    if not prepared_text:
        macs += text_len * (cfg.text_dim * d + d * d) + L * 2 * text_len * d * d
    if actions:
        ah = cfg.action_hidden
        macs += frames * (cfg.action_dim * cfg.temporal_compression * ah + ah * ah + L * ah * d)
    if pose:
        ph = cfg.pose_hidden
        macs += frames * (12 * ph + ph * ph + L * ph * 2 * d)
    macs += n * d * cfg.out_channels * p                                   # head
    return 2 * macs


@dataclass
class PresetStats:
    name: str
    params: dict[str, int]
    tokens_per_frame: int
    gflops_frame: float          # one latent frame, no context
    gflops_frame_window: float   # one latent frame attending to the rolling window of memory.window latents
    window: int


def preset_stats(rc: RelicConfig) -> PresetStats:
    n = rc.tokens_per_latent
    return PresetStats(
        name=rc.name, params=dit_param_count(rc.dit), tokens_per_frame=n,
        gflops_frame=dit_flops(rc.dit, n, 1, 0, rc.text_len) / 1e9,
        gflops_frame_window=dit_flops(rc.dit, n, 1, rc.memory.window * n, rc.text_len) / 1e9,
        window=rc.memory.window)


def markdown_table() -> str:
    rows = ["| preset | DiT params | of which action / pose encoders | resolution → tokens per latent frame "
            "| GFLOPs / latent frame (no context) | GFLOPs / latent frame (+ window context) |",
            "|---|---|---|---|---|---|"]
    for name, make in PRESETS.items():
        rc = make()
        s = preset_stats(rc)
        rows.append(f"| {name} | {s.params['total'] / 1e6:,.1f} M | {s.params['action'] / 1e6:,.2f} M / "
                    f"{s.params['pose'] / 1e6:,.2f} M | {rc.height}×{rc.width} → {s.tokens_per_frame} "
                    f"| {s.gflops_frame:,.2f} | {s.gflops_frame_window:,.2f} ({s.window} latents) |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
