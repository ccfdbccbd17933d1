"""Memory and throughput estimates per GPU count, computed from the configs (``relic bench scale``).

``python -m relic.training.estimate [--out runs/bench/scale]`` or ``relic bench scale`` writes
``scale.json``, ``scale.md`` (the tables of docs/scaling.md) and ``scale.png``.

Everything is derived from a preset's :class:`~relic.config.RelicConfig`: the parameter count of the DiT
(built on the ``meta`` device, so exact and free), the tokens of a sample (latents × tokens per latent), and
the KV context of the streaming student (:func:`relic.memory.memory_plan` on the paper's schedule). What is
NOT measured here (no GPU on this machine) are the hardware numbers in :class:`Hardware`; they are stated
assumptions, and throughput figures are model-FLOPs estimates at an assumed utilization.

Per GPU, training (FSDP2 over all ``gpus`` ranks, Ulysses group ``sp``, bf16 compute, fp32 master weights):

* parameters: fp32 shard ``4 P / gpus`` + bf16 all-gathered units in flight (2 blocks: current + prefetch);
* gradients: fp32 shard ``4 P / gpus``; AdamW moments: ``8 P / gpus``; EMA: ``4 P / gpus``;
* activations with per-block checkpointing: the fp32 block inputs ``L · 4 d`` bytes per token, plus one
  block's saved tensors ``(60 d + 4 ffn)`` bytes per token, for ``tokens / sp`` tokens (memory-efficient
  attention: no n² scores);
* frozen models (the DMD teacher): bf16 shard ``2 P / gpus``.

Inference (Ulysses group of ``gpus``; weights replicated): bf16 weights ``2 P`` (or 1 byte/param with
weight-only int8/fp8), KV cache ``2 · L · heads/gpus · hd · context tokens`` × storage bytes (+ fp32 scale
per token and head with fp8).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from relic.config import RelicConfig, get_preset
from relic.memory import memory_plan, pooled_grid

GiB = 2 ** 30


@dataclass
class Hardware:
    """Assumed GPU (H100 SXM): dense bf16 peak, utilization, NVLink bandwidth per GPU, memory."""

    name: str = "H100-80GB-SXM"
    peak_tflops: float = 989.0
    mfu_train: float = 0.40
    mfu_infer: float = 0.30
    link_gbps: float = 450.0          # GB/s per GPU, all-to-all within a node
    memory_gib: float = 80.0


_PARAMS: dict[str, dict[str, int]] = {}


def dit_params(cfg: RelicConfig) -> dict[str, int]:
    """Exact parameter counts of the DiT: total and the largest FSDP unit (one block)."""
    from relic.models.dit import DiT

    key = repr(cfg.dit)
    if key not in _PARAMS:
        with torch.device("meta"):
            model = DiT(cfg.dit)
        total = sum(p.numel() for p in model.parameters())
        block = sum(p.numel() for p in model.blocks[0].parameters())
        _PARAMS[key] = {"total": total, "block": block, "root": total - block * len(model.blocks)}
    return dict(_PARAMS[key])


def tokens_per_latent(cfg: RelicConfig) -> int:
    return cfg.tokens_per_latent


def sample_latents(cfg: RelicConfig, seconds: float) -> int:
    """Latent frames of a clip of ``seconds`` (1 + 4k video frames -> 1 + k latents)."""
    frames = int(round(seconds * cfg.fps))
    return 1 + frames // cfg.dit.temporal_compression


def context_tokens(cfg: RelicConfig, num_latents: int) -> int:
    """KV context tokens of the streaming student after ``num_latents`` latents (first + memory + window)."""
    h, w = cfg.latent_hw
    grid = (h // cfg.dit.patch_size[1], w // cfg.dit.patch_size[2])
    total = 0
    for _, s in memory_plan(num_latents, cfg.memory):
        gh, gw = pooled_grid(grid, s)
        total += gh * gw
    return total


def block_flops(cfg: RelicConfig, tokens: int, ctx: int) -> float:
    """Forward FLOPs of all blocks for ``tokens`` query tokens attending to ``ctx`` keys (incl. themselves)."""
    d, f, L = cfg.dit.dim, cfg.dit.ffn_dim, cfg.dit.num_layers
    linear = 2 * tokens * (4 * d * d + 2 * d * d + 2 * d * f)          # self q k v o, cross q o, ffn
    text = 2 * cfg.text_len * 2 * d * d                                 # cross k v of the text
    attn = 2 * 2 * tokens * ctx * d + 2 * 2 * tokens * cfg.text_len * d
    return L * (linear + text + attn)


def train_memory(cfg: RelicConfig, stage: str, gpus: int, sp: int, seconds: float, batch: int = 1) -> dict:
    """Per-GPU training memory (GiB) for ``stage`` in teacher / ode-init / dmd."""
    p = dit_params(cfg)
    P, blk = p["total"], p["block"]
    d, f, L = cfg.dit.dim, cfg.dit.ffn_dim, cfg.dit.num_layers
    trainable = {"teacher": 1, "ode-init": 1, "dmd": 2}[stage]          # dmd: student + fake score
    frozen = {"teacher": 0, "ode-init": 0, "dmd": 1}[stage]             # dmd: the real score (teacher)
    ema = 1                                                             # the exported model keeps an EMA
    n = sample_latents(cfg, seconds) * tokens_per_latent(cfg)
    if stage != "teacher":
        # the causal student trains block by block: its largest forward is one block of tokens plus context
        n = cfg.frames_per_block * tokens_per_latent(cfg) + context_tokens(cfg, sample_latents(cfg, seconds))
    n_loc = batch * math.ceil(n / sp)
    out = {
        "params_fp32_shard": (trainable + ema) * 4 * P / gpus,
        "params_frozen_bf16_shard": frozen * 2 * P / gpus,
        "params_gathered_bf16": 2 * 2 * blk,
        "grads_fp32_shard": trainable * 4 * P / gpus,
        "adamw_fp32_shard": trainable * 8 * P / gpus,
        "activations": n_loc * (L * 4 * d + 60 * d + 4 * f),
    }
    out = {k: v / GiB for k, v in out.items()}
    out["total"] = sum(out.values())
    out["tokens"] = n
    return out


def train_step_time(cfg: RelicConfig, stage: str, gpus: int, sp: int, seconds: float, hw: Hardware) -> dict:
    """Seconds per optimizer step of one sample per data-parallel group (global batch = gpus / sp)."""
    lat = sample_latents(cfg, seconds)
    n = lat * tokens_per_latent(cfg)
    if stage == "teacher":
        fwd = block_flops(cfg, n, n)
        passes = 4                                                       # fwd + bwd (2x) + recompute
        flops = passes * fwd
    else:
        # causal student: every block attends to its context; DMD adds the fake/real scores (fwd+bwd of the
        # fake, 2 fwd of the real with CFG) on the whole generated sample and a no-grad rollout
        blocks = (lat - 1) // cfg.frames_per_block
        tb = cfg.frames_per_block * tokens_per_latent(cfg)
        ctx = context_tokens(cfg, lat)
        stu = sum(block_flops(cfg, tb, min(ctx, context_tokens(cfg, 1 + i * cfg.frames_per_block)) + tb)
                  for i in range(blocks))
        flops = 4 * stu
        if stage == "dmd":
            full = block_flops(cfg, n, n)
            flops += len(cfg.sampler.timesteps) * stu + 4 * full + 2 * full
    per_gpu = flops / sp                                                 # an SP group splits one sample
    compute = per_gpu / (hw.peak_tflops * 1e12 * hw.mfu_train)
    # Ulysses: 4 all-to-alls per block (q, k, v, out) forward, again backward and in recompute; each moves
    # (sp-1)/sp of the rank's tokens x dim bf16
    n_loc = math.ceil(n / sp)
    a2a = 0.0 if sp == 1 else 3 * 4 * cfg.dit.num_layers * n_loc * cfg.dit.dim * 2 * (sp - 1) / sp
    comm = a2a / (hw.link_gbps * 1e9)
    return {"tflop_per_sample": flops / 1e12, "compute_s": compute, "ulysses_comm_s": comm,
            "step_s": compute + comm, "samples_per_s": (gpus / sp) / (compute + comm)}


def infer(cfg: RelicConfig, gpus: int, seconds: float, hw: Hardware, kv: str = "bf16",
          weights: str = "bf16") -> dict:
    """Streaming student with a Ulysses group of ``gpus``: memory per GPU and frames per second."""
    p = dit_params(cfg)["total"]
    lat = sample_latents(cfg, seconds)
    ctx = context_tokens(cfg, lat)
    L, heads, hd = cfg.dit.num_layers, cfg.dit.num_heads, cfg.dit.head_dim
    elem = {"fp32": 4, "bf16": 2, "fp8": 1}[kv]
    per_tok_head = 2 * hd * elem + (2 * 4 if kv == "fp8" else 0)
    # stored tokens: the context plus the (unselected) archive; without a budget they are the context
    kv_bytes = L * (heads / gpus) * ctx * per_tok_head
    w_bytes = p * (2 if weights == "bf16" else 1)
    tb = cfg.frames_per_block * tokens_per_latent(cfg)
    passes = len(cfg.sampler.timesteps) + 1                             # denoising steps + the cache write
    flops = passes * block_flops(cfg, tb, ctx + tb)
    latency = flops / gpus / (hw.peak_tflops * 1e12 * hw.mfu_infer)
    a2a = 0.0 if gpus == 1 else passes * 4 * L * math.ceil(tb / gpus) * cfg.dit.dim * 2 * (gpus - 1) / gpus
    latency += a2a / (hw.link_gbps * 1e9)
    frames = cfg.frames_per_block * cfg.dit.temporal_compression
    return {"context_tokens": ctx, "weights_gib": w_bytes / GiB, "kv_gib": kv_bytes / GiB,
            "block_latency_s": latency, "fps": frames / latency}


def valid_sp(cfg: RelicConfig, sp: int) -> bool:
    return cfg.dit.num_heads % sp == 0 and tokens_per_latent(cfg) % sp == 0


def estimate(presets=("wan2.1-1.3b", "wan2.1-14b"), seconds: float = 20.0, hw: Hardware | None = None) -> dict:
    """All tables: training per (preset, stage, gpus, sp) and inference per (preset, gpus, kv dtype)."""
    hw = hw or Hardware()
    out = {"hardware": asdict(hw), "seconds": seconds, "presets": {}}
    for name in presets:
        cfg = get_preset(name)
        pc = dit_params(cfg)
        rows = []
        for stage in ("teacher", "ode-init", "dmd"):
            for gpus in (8, 16, 32, 64):
                for sp in (1, 2, 4, 8):
                    if gpus % sp or not valid_sp(cfg, sp):
                        continue
                    m = train_memory(cfg, stage, gpus, sp, seconds)
                    t = train_step_time(cfg, stage, gpus, sp, seconds, hw)
                    rows.append({"stage": stage, "gpus": gpus, "sp": sp, **{f"mem_{k}": v for k, v in m.items()},
                                 **t, "fits": m["total"] < 0.9 * hw.memory_gib})
        inf = []
        for gpus in (1, 2, 4, 8):
            if not valid_sp(cfg, gpus):
                continue
            for kv in ("bf16", "fp8"):
                inf.append({"gpus": gpus, "kv": kv, **infer(cfg, gpus, seconds, hw, kv)})
        out["presets"][name] = {"params": pc, "tokens_per_latent": tokens_per_latent(cfg),
                                "latents": sample_latents(cfg, seconds),
                                "sample_tokens": sample_latents(cfg, seconds) * tokens_per_latent(cfg),
                                "context_tokens": context_tokens(cfg, sample_latents(cfg, seconds)),
                                "train": rows, "infer": inf}
    return out


def markdown(res: dict) -> str:
    """The tables of docs/scaling.md."""
    hw = res["hardware"]
    lines = [f"Assumed GPU: {hw['name']}, {hw['peak_tflops']:.0f} TFLOP/s bf16 dense, MFU {hw['mfu_train']:.0%} "
             f"(training) / {hw['mfu_infer']:.0%} (inference), {hw['link_gbps']:.0f} GB/s all-to-all, "
             f"{hw['memory_gib']:.0f} GiB. Samples of {res['seconds']:.0f} s.", ""]
    for name, r in res["presets"].items():
        p = r["params"]
        lines += [f"### {name}", "",
                  f"DiT parameters {p['total'] / 1e9:.2f} B (one block {p['block'] / 1e6:.1f} M); "
                  f"{r['tokens_per_latent']} tokens per latent, {r['latents']} latents = {r['sample_tokens']:,} "
                  f"tokens per sample; streaming KV context after {res['seconds']:.0f} s: {r['context_tokens']:,} "
                  "tokens.", "",
                  "| stage | GPUs | SP | params+EMA | grads | AdamW | gathered | frozen | activations | total GiB | "
                  "fits | step s | samples/s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for x in r["train"]:
            lines.append(f"| {x['stage']} | {x['gpus']} | {x['sp']} | {x['mem_params_fp32_shard']:.1f} | "
                         f"{x['mem_grads_fp32_shard']:.1f} | {x['mem_adamw_fp32_shard']:.1f} | "
                         f"{x['mem_params_gathered_bf16']:.2f} | {x['mem_params_frozen_bf16_shard']:.1f} | "
                         f"{x['mem_activations']:.1f} | {x['mem_total']:.1f} | {'yes' if x['fits'] else 'no'} | "
                         f"{x['step_s']:.1f} | {x['samples_per_s']:.2f} |")
        lines += ["", "| inference GPUs (SP) | KV dtype | weights GiB | KV GiB / GPU | block latency ms | FPS |",
                  "|---|---|---|---|---|---|"]
        for x in r["infer"]:
            lines.append(f"| {x['gpus']} | {x['kv']} | {x['weights_gib']:.1f} | {x['kv_gib']:.2f} | "
                         f"{x['block_latency_s'] * 1e3:.0f} | {x['fps']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relic.fileio import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in res["presets"].items():
        for stage in ("teacher", "dmd"):
            best = {}
            for x in r["train"]:
                if x["stage"] == stage and x["fits"]:
                    best[x["gpus"]] = max(best.get(x["gpus"], 0.0), x["samples_per_s"])
            if best:
                g = sorted(best)
                axes[0].plot(g, [best[k] for k in g], marker="o", label=f"{name} {stage}")
        xs = [x for x in r["infer"] if x["kv"] == "fp8"]
        axes[1].plot([x["gpus"] for x in xs], [x["fps"] for x in xs], marker="o", label=f"{name} (fp8 KV)")
    axes[0].set(xscale="log", yscale="log", xlabel="GPUs", ylabel="samples / s (best SP that fits)",
                title="training throughput (estimate)")
    axes[1].set(xlabel="GPUs (Ulysses group)", ylabel="generated FPS", title="streaming (estimate)")
    axes[1].axhline(16, color="gray", ls="--", lw=0.8)
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def run(out: str | Path, seconds: float = 20.0) -> dict:
    from relic.fileio import write_json_atomic, write_text_atomic

    out = Path(out)
    res = estimate(seconds=seconds)
    write_json_atomic(out / "scale.json", res)
    write_text_atomic(out / "scale.md", markdown(res))
    plot(res, out / "scale.png")  # atomic (relic.fileio.save_figure)
    return res


def add_bench_parser(sub) -> None:
    p = sub.add_parser("scale", help="memory/throughput estimates per GPU count for wan2.1-1.3b and wan2.1-14b",
                       description="Estimates from the configs (parameters, gradients, AdamW, activations, KV); "
                                   "writes scale.json, scale.md and scale.png. See docs/scaling.md.")
    p.add_argument("--out", default="runs/bench/scale", help="output directory (default runs/bench/scale)")
    p.add_argument("--seconds", type=float, default=20.0, help="sample / stream length in seconds (default 20)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    res = run(args.out, args.seconds)
    print(markdown(res))
    print(f"wrote {Path(args.out) / 'scale.json'}, scale.md, scale.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m relic.training.estimate", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    add_bench_parser(sub)
    args = ap.parse_args(["scale", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
