"""``relic bench replay``: replayed vs naive back-propagation through the student's rollout, vs horizon L.

For each L the same rollout (same weights, noise, context) is back-propagated twice with the same Δŝ:

* **naive**: the rollout runs with autograd on, every block's graph is kept, one backward at the end;
* **replay**: the rollout runs with autograd off, then each block is recomputed with autograd from its stored
  noise and context, back-propagated and freed (:func:`relic.training.dmd.replay_backward`).

Peak memory is the maximum of the CPU allocator's "Total Allocated" counter recorded by the torch profiler
(``profile_memory=True``) during the measured call, relative to its start; time is wall-clock. The
relative error is ``‖g_naive − g_replay‖ / ‖g_naive‖`` over all generator parameters (fp32).

Output: ``{"rows": [{"blocks", "naive_peak_mb", "replay_peak_mb", "naive_s", "replay_s", "grad_rel_err"}],
"config": {...}, "machine": {...}}``; goal: at L = 8 replay peak ≤ 1/3 of naive.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from relic.config import DiTConfig, MemoryConfig, RelicConfig, SamplerConfig


def peak_allocated_mb(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` under the torch profiler; return (peak MB allocated above the start, fn's result)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.unlink(path)
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return (max(totals) if totals else 0) / 2 ** 20, out


def bench_model_config(dim: int = 128, layers: int = 4, heads: int = 2, window: int = 2, height: int = 128,
                       width: int = 224) -> RelicConfig:
    """A small student for the benchmark and the tests (fp32 cache, the paper's schedule, relic-tiny's frame size)."""
    return RelicConfig(
        name="bench", height=height, width=width, frames_per_block=1,
        dit=DiTConfig(dim=dim, ffn_dim=2 * dim, text_dim=32, num_heads=heads, num_layers=layers, freq_dim=64,
                      action_hidden=32, pose_hidden=32),
        memory=MemoryConfig(window=window, dtype="fp32"),
        sampler=SamplerConfig(timesteps=(1000.0, 750.0, 500.0, 250.0), shift=5.0))


def make_problem(mcfg: RelicConfig, blocks: int, seed: int = 0, batch: int = 1):
    """(student, first latent, (text states, mask), actions, R, P) for a rollout of ``blocks`` blocks."""
    from relic.models.dit import DiT

    torch.manual_seed(seed)
    student = DiT(mcfg.dit)
    for p in student.parameters():                    # the conditioning encoders start at zero: wake them up
        if p.abs().sum() == 0 and p.ndim > 1:
            torch.nn.init.normal_(p, std=0.02)
    g = torch.Generator().manual_seed(seed + 1)
    h, w = mcfg.latent_hw
    f = 1 + blocks * mcfg.frames_per_block
    first = torch.randn(batch, mcfg.dit.in_channels, 1, h, w, generator=g)
    text = torch.randn(batch, 4, mcfg.dit.text_dim, generator=g)
    actions = torch.rand(batch, 1 + 4 * (f - 1), mcfg.dit.action_dim, generator=g)
    actions[:, 0] = 0.0
    actions[:, 0, -1] = 1.0                           # row 0: the prepended static action (dataset convention)
    R = torch.eye(3).expand(batch, f, 3, 3).clone()   # poses relative to the first frame: R0 = I, P0 = 0
    P = torch.cumsum(torch.rand(batch, f, 3, generator=g) * 0.1, dim=1)
    P = P - P[:, :1]
    return student, first, (text, None), actions, R, P


def grads_of(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def run_once(mcfg: RelicConfig, blocks: int, mode: str, grad_steps: int = 1, seed: int = 0,
             measure: str = "memory") -> dict:
    """One back-propagation (``mode`` = "naive" or "replay") -> peak MB (``measure="memory"``, under the
    profiler) or seconds (``measure="time"``, without it), and the gradient vector.

    Parameter gradients are allocated (zeros) before the measurement, so both modes start from the same state.
    """
    from relic.training.dmd import naive_backward, replay_backward, rollout

    student, first, text, actions, R, P = make_problem(mcfg, blocks, seed)
    gsig = torch.Generator().manual_seed(seed + 2)

    def go():
        g = torch.Generator().manual_seed(seed + 3)
        if mode == "naive":
            ro, outs = rollout(student, mcfg, first, text, actions, R, P, blocks, g, grad_steps=grad_steps)
            grad = torch.randn(ro.latents.shape, generator=gsig)
            naive_backward(outs, ro, grad)
        else:
            with torch.no_grad():
                ro, _ = rollout(student, mcfg, first, text, actions, R, P, blocks, g)
            grad = torch.randn(ro.latents.shape, generator=gsig)
            replay_backward(student, mcfg, ro, grad, text, actions, R, P, grad_steps)
        return ro

    for p in student.parameters():
        p.grad = torch.zeros_like(p)
    if measure == "memory":
        peak, _ = peak_allocated_mb(go)
        return {"peak_mb": peak, "grad": grads_of(student)}
    t0 = time.perf_counter()
    go()
    return {"seconds": time.perf_counter() - t0, "grad": grads_of(student)}


def bench_replay(blocks: list[int], grad_steps: int = 1, dim: int = 128, layers: int = 4) -> dict:
    mcfg = bench_model_config(dim=dim, layers=layers)
    rows = []
    for L in blocks:
        run_once(mcfg, 1, "replay", grad_steps, measure="time")          # warm up kernels and allocator paths
        n = run_once(mcfg, L, "naive", grad_steps)
        r = run_once(mcfg, L, "replay", grad_steps)
        nt = run_once(mcfg, L, "naive", grad_steps, measure="time")
        rt = run_once(mcfg, L, "replay", grad_steps, measure="time")
        err = float((n["grad"] - r["grad"]).norm() / n["grad"].norm().clamp_min(1e-30))
        rows.append({"blocks": L, "naive_peak_mb": round(n["peak_mb"], 3), "replay_peak_mb": round(r["peak_mb"], 3),
                     "naive_s": round(nt["seconds"], 4), "replay_s": round(rt["seconds"], 4), "grad_rel_err": err})
    return {"rows": rows,
            "config": {"grad_steps": grad_steps, "model": dataclasses.asdict(mcfg.dit) | {"latent_hw": mcfg.latent_hw},
                       "memory": dataclasses.asdict(mcfg.memory)},
            "machine": {"cpus": os.cpu_count(), "threads": torch.get_num_threads(), "platform": platform.platform(),
                        "torch": torch.__version__}}


def plot(result: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relic.fileio import save_figure

    rows = result["rows"]
    L = [r["blocks"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(L, [r["naive_peak_mb"] for r in rows], "o-", label="naive (full graph)")
    ax[0].plot(L, [r["replay_peak_mb"] for r in rows], "s-", label="replayed")
    ax[0].set_xlabel("blocks L")
    ax[0].set_ylabel("peak allocated (MB)")
    ax[0].legend()
    ax[1].plot(L, [r["naive_s"] for r in rows], "o-", label="naive")
    ax[1].plot(L, [r["replay_s"] for r in rows], "s-", label="replayed")
    ax[1].set_xlabel("blocks L")
    ax[1].set_ylabel("seconds")
    ax[1].legend()
    fig.suptitle("DMD generator back-propagation: replayed vs naive")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def add_bench_parser(sub) -> None:
    p = sub.add_parser("replay", help="Replayed vs naive back-prop: peak memory and time vs blocks.",
                       description="Measure peak memory (torch profiler) and time of replayed vs naive "
                                   "back-propagation through the student's rollout for several horizons L.")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--plot", default=None, help="output PNG")
    p.add_argument("--blocks", default="1,2,4,8", help="comma-separated horizons L (default 1,2,4,8)")
    p.add_argument("--grad-steps", type=int, default=1, help="denoising steps per block with gradient (default 1)")
    p.add_argument("--dim", type=int, default=128, help="student width (default 128)")
    p.add_argument("--layers", type=int, default=4, help="student layers (default 4)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from relic.errors import UserError
    from relic.fileio import write_json_atomic

    try:
        blocks = [int(x) for x in args.blocks.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--blocks must be comma-separated integers, got {args.blocks!r}") from None
    if not blocks or min(blocks) < 1:
        raise UserError("--blocks needs positive integers")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    res = bench_replay(blocks, args.grad_steps, args.dim, args.layers)
    write_json_atomic(args.json, res)
    if args.plot:
        plot(res, args.plot)
    for r in res["rows"]:
        print(f"L={r['blocks']:>3}  naive {r['naive_peak_mb']:8.2f} MB {r['naive_s']:7.3f} s   "
              f"replay {r['replay_peak_mb']:8.2f} MB {r['replay_s']:7.3f} s   rel err {r['grad_rel_err']:.2e}")
    return 0
