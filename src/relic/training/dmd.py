"""Stage 3: distribution matching distillation with replayed back-propagation (paper §4.4.2, ``relic train dmd``).

Three networks:

* the **generator** (the block-causal student, from ODE init), rolled out by itself, autoregressively,
  over the full horizon with the runtime's compressed KV cache (:class:`relic.memory.KVCache`, Self-Forcing);
* the **real score**: the frozen teacher with classifier-free guidance;
* the **fake score**: a trainable copy of the teacher, trained by flow matching on the generator's samples
  (``critic_steps`` updates per generator update).

The DMD gradient of a generated video ``x`` (b c f h w) at a random noise level σ is

    Δŝ = (x̂0_fake(x_σ) − x̂0_real(x_σ)) / mean|x − x̂0_real(x_σ)|

(per sample), i.e. the gradient of ``½‖x − sg(x − Δŝ)‖²``; descending it moves the generator's samples
toward the teacher's distribution. The first latent (the clean conditioning frame) gets no gradient.

**Replayed back-propagation** (:func:`replay_backward`) makes the memory of one generator update independent
of the horizon L:

1. roll out all L blocks with autograd off (:func:`rollout`), storing per block the seed of its noises
   and the plan of the KV context it attended to; the context segments (first frame + compressed memory +
   window, as the runtime cache served them) are stored once each;
2. compute Δŝ for the whole sequence with the real and fake scores (:func:`score_difference`);
3. replay block by block with autograd on, from the stored noise and context (so block l is recomputed
   exactly), back-propagate ``Δŝ_l`` into the generator and free the block's graph;
4. step the optimizer once after the full replay.

As in Self-Forcing, the cache itself is written without gradient (a block's context is a constant for its
denoising). **The exit step** (``dmd.exit_step``, Self-Forcing's scheme): each rollout draws one step
e ∈ {0, …, S−1} of the S few-step denoising steps, uniformly, the same for every block of the rollout. Every
block is denoised through steps 0..e only; step e's x̂0 is the block's output (what Δŝ is computed on) and what
is written into the cache, and only step e carries gradient (the last ``grad_steps`` steps up to e, 1 by
default). So the high-noise steps, which decide a block's layout, are trained too; with ``exit_step: last``
every block runs all S steps and only the last one is trained (the behaviour before it was sampled). The
runtime (:class:`relic.runtime.student.Student`) always runs all S steps. :func:`naive_backward` is the
reference: the same rollout with every block's graph kept and one backward; the two give the same gradients
for every exit step (tests/training/test_dmd.py) while the replay's peak memory stays flat in L
(``relic bench replay``).

**Noise levels** (``dmd.sigma``): Self-Forcing draws the DMD and critic noise level as u ~ U(0, 1), applies
Wan's shift and clamps the result to [min_t, max_t] = [0.02, 0.98] (``sigma: clamp_shifted``, the default).
``sigma: shift_range`` is the earlier scheme, u ~ U(min_t, max_t) then the shift, which reaches σ = 0.996
(and leaves the critic's σ unclamped).
**Long rollouts** (``dmd.window_seconds``, :mod:`relic.training.long_rollout`): the student streams the whole
``data.seconds`` sample, the scores judge one window of it re-anchored as the data pipeline cuts a clip, and the
replay starts at the window's first block. None (the default) scores the whole rollout.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from relic.errors import UserError
from relic.runtime.sampling import add_noise, context_sigma, shift_sigma, student_sigmas
from relic.training.batches import LatentBatch, LatentDataConfig, LatentSamples
from relic.training.config import LoopConfig, OptimConfig, model_config
from relic.training.distributed import DistributedConfig, make_trainer, shard_module
from relic.training.loop import Task, Trainer
from relic.training.ode import HybridConfig, draw_hybrid, hybrid_forcing_loss, list_pairs, pair_batch
from relic.training.teacher import FlowConfig, flow_matching_loss, sample_sigmas


# ---------------------------------------------------------------------------------------- the rollout

KV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class BlockRecord:
    """What a block needs to be replayed: its place, its noise and the context plan it attended to."""

    start: int                                       # latent index of the block's first latent
    seed: int                                        # seeds the block's noise (regenerated, never stored)
    shape: tuple[int, ...]                           # (b c n h w)
    steps: int                                       # denoising steps of the schedule
    plan: list[tuple[int, int]]                      # the cache's context plan: [(latent index, pooling s)]
    exit_step: int | None = None                     # the step whose x0 is the block's output (None: the last)

    @property
    def exit(self) -> int:
        return self.steps - 1 if self.exit_step is None else self.exit_step

    def noises(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(initial noise, one re-noising noise per later step), identical at every call."""
        g = torch.Generator().manual_seed(self.seed)
        first = torch.randn(self.shape, generator=g)
        return first, [torch.randn(self.shape, generator=g) for _ in range(self.steps - 1)]


@dataclass
class Rollout:
    """The generated latents, the per-block records and the stored context segments.

    ``segments[(i, s)]`` holds latent i's K/V as the cache served it (pooled by s): k, v (l b n h d), pos (n 3).
    Each segment is stored once however many blocks attend to it, so the stored context grows like the
    runtime cache itself (first frame + window + compressed memory), not like L × context.
    """

    latents: torch.Tensor                            # (b c 1+L·n h w): clean first latent + generated blocks
    blocks: list[BlockRecord]
    segments: dict[tuple[int, int], KV] = field(default_factory=dict)

    def context(self, rec: BlockRecord) -> list[KV]:
        """The DiT's ``kv_context`` of block ``rec``: per layer (k (b m h d), v (b m h d), pos (m 3))."""
        segs = [self.segments[key] for key in rec.plan]
        k = torch.cat([sg[0] for sg in segs], dim=2)
        v = torch.cat([sg[1] for sg in segs], dim=2)
        pos = torch.cat([sg[2] for sg in segs], dim=0)
        return [(k[i], v[i], pos) for i in range(k.shape[0])]


def _block_cond(actions: torch.Tensor, R: torch.Tensor, P: torch.Tensor, start: int, n: int):
    """Actions (video frames 4·start−3 .. 4(start+n−1)) and per-latent poses of a block."""
    return actions[:, 4 * start - 3: 4 * (start + n - 1) + 1], R[:, start:start + n], P[:, start:start + n]


def denoise_block(student, rec: BlockRecord, context: list[KV], text, actions: torch.Tensor, R: torch.Tensor, P: torch.Tensor,
                  sampler, grad_steps: int = 1, first_latent: torch.Tensor | None = None) -> torch.Tensor:
    """The student's few-step denoising of one block (as :func:`relic.runtime.sampling.student_denoise`),
    stopped at the block's exit step ``rec.exit`` (all steps when it is the last).

    ``text`` is the raw (states (b L d), mask (b L) or None) pair: the block prepares its own cross-attention
    context, so that each block's graph is self-contained (replay frees it entirely). Autograd (when enabled
    by the caller) is kept only for the last ``grad_steps`` steps up to the exit. ``first_latent`` (b c h w): the
    rollout's clean first latent, for DiTs with ``warp_condition`` (as the runtime passes it). Returns the exit
    step's x0 (b c n h w).
    """
    sig = student_sigmas(sampler)
    if len(sig) != rec.steps or not 0 <= rec.exit < len(sig):
        raise ValueError(f"block record has {rec.steps} steps and exit step {rec.exit}; the sampler has {len(sig)}")
    grad_on = torch.is_grad_enabled()
    text = student.prepare_text(*text)
    x, renoise = rec.noises()
    x0 = x
    n = rec.shape[2]
    e = rec.exit
    a, Rb, Pb = _block_cond(actions, R, P, rec.start, n)
    for k, s in enumerate(sig[:e + 1]):
        with torch.set_grad_enabled(grad_on and k > e - grad_steps):
            t = torch.full((x.shape[0], n), s * sampler.num_train_timesteps, device=x.device)
            v = student(x, t, text, None, a, Rb, Pb, frame_offset=rec.start, kv_context=context,
                        first_latent=first_latent)
            x0 = x - s * v.to(x.dtype)
        if k < e:
            x = add_noise(x0, renoise[k], sig[k + 1])
    return x0


EXIT_MODES = ("sampled", "last")


def draw_exit_step(mode: str | int, steps: int, generator: torch.Generator) -> int:
    """The exit step of one rollout: ``"sampled"`` -> uniform over 0..steps−1 (one draw from ``generator``),
    ``"last"`` -> steps − 1 (no draw), an int -> that step."""
    if mode == "sampled":
        return int(torch.randint(0, steps, (), generator=generator))
    if mode == "last":
        return steps - 1
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode < steps:
        return mode
    raise UserError(f"dmd.exit_step must be 'sampled', 'last' or a step index in [0, {steps - 1}], got {mode!r}")


def rollout(student, mcfg, first: torch.Tensor, text, actions: torch.Tensor, R: torch.Tensor, P: torch.Tensor,
            num_blocks: int, generator: torch.Generator, grad_steps: int = 0, memory=None,
            compute_dtype: torch.dtype = torch.float32, exit_step: int | None = None
            ) -> tuple[Rollout, list[torch.Tensor]]:
    """Roll the student out over ``num_blocks`` blocks with the runtime's KV cache.

    Args:
        first: (b c 1 h w) clean first latent; text: (states (b L d), mask (b L) or None).
        actions (b F 13), R (b f 3 3), P (b f 3): conditioning of the whole horizon (f ≥ 1 + L·n latents).
        grad_steps: 0 = no autograd at all (step 1 of the replay); > 0 keeps each block's graph through its
            last ``grad_steps`` denoising steps up to the exit (the naive full-graph reference).
        exit_step: the denoising step every block stops at (its x0 is the block's output and cache write);
            None = the last step, as the runtime.
    Returns:
        the rollout (latents detached, per-block records) and the per-block x0 tensors (with graphs if any).
    """
    from relic.memory import KVCache, pooled_grid

    b, c, _, h, w = first.shape
    n = mcfg.frames_per_block
    ph, pw = student.cfg.patch_size[1:]
    dc = student.cfg
    mem = memory if memory is not None else mcfg.memory
    cache = KVCache(mem, num_layers=dc.num_layers, heads=dc.num_heads, head_dim=dc.head_dim, grid=(h // ph, w // pw),
                    batch=b, compute_dtype=compute_dtype, capacity_latents=1 + num_blocks * n)
    Rn, Pn = R[0].detach().double().cpu().numpy(), P[0].detach().double().cpu().numpy()
    ctx_t = context_sigma(mcfg.sampler)
    nsteps = len(mcfg.sampler.timesteps)
    with torch.no_grad():                                                  # the first frame: clean, t = 0
        text_ctx = student.prepare_text(*text)
        _, kv = student(first, torch.zeros(b, 1), text_ctx, None, actions[:, :1], R[:, :1], P[:, :1], return_kv=True)
        cache.push_block(kv, Rn[:1], Pn[:1])
    blocks, outs = [], []
    ro = Rollout(first, blocks)
    for l in range(num_blocks):
        start = 1 + l * n
        ctx = cache.context(Rn[start + n - 1], Pn[start + n - 1])
        plan = list(cache.last_plan)
        off = 0
        for index, s in plan:                                              # store each served segment once
            m = math.prod(pooled_grid(cache.grid, s))
            if (index, s) not in ro.segments:
                ro.segments[index, s] = (ctx.k[:, :, off:off + m].clone(), ctx.v[:, :, off:off + m].clone(),
                                         ctx.pos[off:off + m].clone())
            off += m
        if off != ctx.tokens:
            raise RuntimeError(f"context plan covers {off} tokens but the cache served {ctx.tokens}")
        shape = (b, c, n, h, w)
        seed = int(torch.randint(0, 2 ** 62, (), generator=generator))
        rec = BlockRecord(start, seed, shape, nsteps, plan, exit_step)
        context = ro.context(rec)
        ctx_eps = torch.randn(shape, generator=generator) if ctx_t > 0 else None
        with torch.set_grad_enabled(grad_steps > 0):
            x0 = denoise_block(student, rec, context, text, actions, R, P, mcfg.sampler, grad_steps, first[:, :, 0])
        with torch.no_grad():                                              # write the clean block into the cache
            xc = x0.detach() if ctx_eps is None else add_noise(x0.detach(), ctx_eps, ctx_t)
            a, Rb, Pb = _block_cond(actions, R, P, start, n)
            t = torch.full((b, n), ctx_t * mcfg.sampler.num_train_timesteps)
            _, kv = student(xc, t, student.prepare_text(*text), None, a, Rb, Pb, frame_offset=start,
                            kv_context=context, return_kv=True, first_latent=first[:, :, 0])
            cache.push_block(kv, Rn[start:start + n], Pn[start:start + n])
        del context
        blocks.append(rec)
        outs.append(x0)
    ro.latents = torch.cat([first, *[x.detach() for x in outs]], dim=2)
    return ro, outs


def replay_backward(student, mcfg, ro: Rollout, grad: torch.Tensor, text, actions: torch.Tensor, R: torch.Tensor,
                    P: torch.Tensor, grad_steps: int = 1, scale: float = 1.0, start_block: int = 0) -> None:
    """Step 3 of replayed back-propagation: recompute each block with autograd from its record and
    back-propagate ``scale · grad`` of its latents (grad (b c f h w) over the whole sequence), one block at a time.
    Blocks before ``start_block`` are skipped (their gradient must be zero: a scored window's context)."""
    if start_block and grad[:, :, 1:ro.blocks[start_block].start].abs().max() > 0:
        raise ValueError(f"replay from block {start_block} would drop the non-zero gradient of the blocks before it")
    for rec in ro.blocks[start_block:]:
        n = rec.shape[2]
        with torch.enable_grad():
            x0 = denoise_block(student, rec, ro.context(rec), text, actions, R, P, mcfg.sampler, grad_steps,
                               ro.latents[:, :, 0])
            x0.backward(scale * grad[:, :, rec.start:rec.start + n].to(x0.dtype))
        del x0                                                             # free this block's graph


def naive_backward(outs: list[torch.Tensor], ro: Rollout, grad: torch.Tensor, scale: float = 1.0) -> None:
    """The reference: one backward through every block's graph (kept by ``rollout(grad_steps > 0)``)."""
    total = sum((x * (scale * grad[:, :, rec.start:rec.start + x.shape[2]]).to(x.dtype)).sum()
                for x, rec in zip(outs, ro.blocks))
    total.backward()


# ------------------------------------------------------------------------------------------- scores

def score_difference(real, fake, x: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, guidance: float
                     ) -> tuple[torch.Tensor, float]:
    """Δŝ (b c f h w) of the generated sequence x (latent 0 clean, excluded) and the DMD loss value ½ mean Δŝ².

    Args:
        real: ``real(x_σ, t, cond: bool) -> v`` (the frozen teacher; ``cond=False`` = empty prompt).
        fake: ``fake(x_σ, t) -> v`` (the critic, conditional).
        sigma: (b,) noise levels; noise: (b c f h w).
    """
    b, f = x.shape[0], x.shape[2]
    s = sigma.view(b, 1, 1, 1, 1)
    xt = add_noise(x, noise, s)
    xt = torch.cat([x[:, :, :1], xt[:, :, 1:]], dim=2)
    t = (sigma.view(b, 1) * 1000.0).expand(b, f).clone()
    t[:, 0] = 0.0
    with torch.no_grad():
        v = real(xt, t, True).float()
        if guidance != 1.0:
            vu = real(xt, t, False).float()
            v = vu + guidance * (v - vu)
        x0_real = xt.float() - s * v
        x0_fake = xt.float() - s * fake(xt, t).float()
        norm = (x.float() - x0_real).abs()[:, :, 1:].mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
        grad = (x0_fake - x0_real) / norm
        grad[:, :, 0] = 0.0
    return grad, float(0.5 * (grad[:, :, 1:] ** 2).mean())


# -------------------------------------------------------------------------------------------- stage

@dataclass
class DMDConfig:
    critic_steps: int = 2            # fake-score updates per generator update
    guidance: float = 3.0            # CFG of the real score
    guide: str = "text"              # what its unconditional branch drops: "text", "command" or "all"
    min_t: float = 0.02              # DMD/critic noise levels lie in [min_t, max_t] (see ``sigma``)
    max_t: float = 0.98
    shift: float = 5.0
    grad_steps: int = 1              # denoising steps of each block that carry gradient (up to the exit step)
    replay: bool = True              # replayed back-propagation (False: the naive full graph)
    exit_step: str | int = "sampled"   # "sampled" (Self-Forcing: uniform per rollout), "last", or a step index
    sigma: str = "clamp_shifted"     # "clamp_shifted": σ = clamp(shift(u ~ U(0,1)), min_t, max_t) (Self-Forcing);
                                     # "shift_range": σ = shift(u ~ U(min_t, max_t)) (before; up to 0.996)
    window_seconds: float | None = None   # score a re-anchored window of this length of each data.seconds-long
                                          # rollout (relic.training.long_rollout); None: the whole rollout


SIGMA_MODES = ("clamp_shifted", "shift_range")


def dmd_sigmas(b: int, d: DMDConfig, g: torch.Generator) -> torch.Tensor:
    """(b,) DMD noise levels (see ``DMDConfig.sigma`` and the module docstring)."""
    if d.sigma == "clamp_shifted":
        return shift_sigma(torch.rand(b, generator=g), d.shift).clamp(d.min_t, d.max_t)
    if d.sigma == "shift_range":
        return shift_sigma(d.min_t + (d.max_t - d.min_t) * torch.rand(b, generator=g), d.shift)
    raise UserError(f"dmd.sigma must be one of {', '.join(SIGMA_MODES)}, got {d.sigma!r}")


@dataclass
class RegressionConfig:
    """DMD's regression loss (Yin et al. 2024, One-step Diffusion with Distribution Matching Distillation, §3.3).

    Each generator update adds ``weight`` × the ODE-init hybrid-forcing regression (:func:`relic.training.ode.
    hybrid_forcing_loss`) on a batch of the teacher's ODE pairs (``pairs``, as ``relic train ode-pairs`` wrote
    them) to the DMD gradient, so the student keeps the teacher's noise→video mapping while DMD sharpens its
    self-rollouts. ``weight: 0`` (the default) is plain DMD, as before.

    ``decay: [start, end]`` hands the student over to plain DMD gradually: the weight holds until generator step
    ``start``, falls linearly to 0 at step ``end`` and stays 0 after it (no pair is read then).
    """

    weight: float = 0.0
    pairs: str | None = None
    batch_size: int = 1
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    decay: list[int] | None = None

    def weight_at(self, step: int) -> float:
        """The regression weight of generator step ``step`` (0-based, as ``train_step`` receives it)."""
        if self.decay is None or step <= self.decay[0]:
            return self.weight
        start, end = self.decay
        return self.weight * max(0.0, (end - step) / (end - start))


@dataclass
class DMDStageConfig:
    out: str = "runs/tiny/dmd"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)
    student: str = "runs/tiny/ode_init/final"
    teacher: str = "runs/tiny/teacher/final"
    vae: str | None = "runs/tiny/vae/final"
    data: LatentDataConfig = field(default_factory=LatentDataConfig)
    dmd: DMDConfig = field(default_factory=DMDConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    flow: FlowConfig = field(default_factory=lambda: FlowConfig(text_dropout=0.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-6, warmup_steps=0, schedule="constant"))
    critic_optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=4e-6, warmup_steps=0, schedule="constant"))
    loop: LoopConfig = field(default_factory=LoopConfig)
    dist: DistributedConfig = field(default_factory=DistributedConfig)   # torchrun: FSDP2 + Ulysses


class DMDTask(Task):
    name = "dmd"

    def __init__(self, cfg: DMDStageConfig):
        self.cfg = cfg
        self.model_cfg = model_config(cfg.preset, cfg.model)

    def build(self, trainer: Trainer) -> None:
        from relic.models.dit import DiT
        from relic.models.text import build_text_encoder

        cfg = self.cfg
        draw_exit_step(cfg.dmd.exit_step, len(self.model_cfg.sampler.timesteps), torch.Generator())  # validate
        dmd_sigmas(1, cfg.dmd, torch.Generator())                                                    # validate
        from relic.training.teacher import check_guide
        check_guide(cfg.dmd.guide)                                                                   # validate
        reg = cfg.regression
        bad_decay = reg.decay is not None and (len(reg.decay) != 2 or not 0 <= reg.decay[0] < reg.decay[1])
        if reg.weight < 0 or (reg.weight > 0 and not reg.pairs) or reg.batch_size < 1 or bad_decay:
            raise UserError("regression needs weight >= 0, batch_size >= 1, decay [start, end] with 0 <= start < end "
                            "and, when weight > 0, the ODE pair directory in regression.pairs (got weight "
                            f"{reg.weight}, pairs {reg.pairs!r}, batch_size {reg.batch_size}, decay {reg.decay})")
        self.pair_files = list_pairs(reg.pairs) if reg.weight > 0 else []
        self.window, self.vae = None, None
        if cfg.dmd.window_seconds is not None:
            from relic.models.autoencoder import load_vae
            from relic.training.long_rollout import check_window, window_latents

            if not cfg.vae:
                raise UserError("dmd.window_seconds needs the autoencoder (vae:) to re-anchor each window")
            fps = self.model_cfg.fps
            self.window = window_latents(float(cfg.dmd.window_seconds), fps)
            longest = max([cfg.data.seconds, *[float(s) for _, s in cfg.data.curriculum]])
            check_window(self.window, window_latents(longest, fps), self.model_cfg.frames_per_block)
            self.vae = load_vae(cfg.vae).eval().requires_grad_(False)
        self.student = DiT.from_pretrained(cfg.student)
        self.real = DiT.from_pretrained(cfg.teacher).eval().requires_grad_(False)
        self.fake = copy.deepcopy(self.real).train().requires_grad_(True)
        shard_module(self.real)                        # FSDP2 under torchrun (the units are sharded by add_unit)
        self.text_encoder = build_text_encoder(self.model_cfg.text_encoder, self.model_cfg.text_len)
        self.data = LatentSamples(cfg.data, self.text_encoder)
        self.empty = self.text_encoder.empty(1)
        trainer.add_unit("student", self.student, cfg.optim)
        trainer.add_unit("fake", self.fake, cfg.critic_optim, ema=False,
                         total_steps=trainer.loop.steps * max(1, cfg.dmd.critic_steps))

    def samples_per_step(self) -> int:
        return self.cfg.data.batch_size

    def _num_blocks(self, batch: LatentBatch) -> int:
        return (batch.num_latents - 1) // self.model_cfg.frames_per_block

    def _rollout(self, batch: LatentBatch, generator: torch.Generator, grad_steps: int = 0,
                 exit_step: int | None = None, num_blocks: int | None = None):
        text = (batch.text, batch.text_mask)
        L = self._num_blocks(batch) if num_blocks is None else num_blocks
        ro, outs = rollout(self.student, self.model_cfg, batch.latents[:, :, :1], text, batch.actions, batch.R,
                           batch.P, L, generator, grad_steps=grad_steps, exit_step=exit_step)
        return ro, outs, text

    def _exit_step(self, trainer: Trainer, *key) -> int:
        """One exit step per rollout, the same on every rank (it decides how many forwards run)."""
        return draw_exit_step(self.cfg.dmd.exit_step, len(self.model_cfg.sampler.timesteps),
                              trainer.generator("exit", *key))

    def _sigma(self, b: int, g: torch.Generator) -> torch.Tensor:
        return dmd_sigmas(b, self.cfg.dmd, g)

    def _window_plan(self, batch: LatentBatch, g: torch.Generator) -> tuple[int, int | None]:
        """(first scored block j, blocks to roll out): (0, None) = the whole sample; with ``dmd.window_seconds``
        the window's first block is drawn from ``g`` and the rollout stops at the window's end."""
        if self.window is None:
            return 0, None
        from relic.training.long_rollout import check_window, draw_window

        n = self.model_cfg.frames_per_block
        check_window(self.window, batch.num_latents - 1, n)
        j = draw_window(self._num_blocks(batch), self.window // n, g)
        return j, j + self.window // n

    def _scored(self, ro: Rollout, batch: LatentBatch, j: int):
        """(the batch the scores judge, the Window or None): the re-anchored window starting at block j, or the
        whole rollout with the sample's own conditioning."""
        if self.window is None:
            gen = LatentBatch(ro.latents.float(), batch.actions, batch.R, batch.P, batch.text, batch.text_mask,
                              batch.captions)
            return gen, None
        from relic.training.long_rollout import cut_window

        win = cut_window(self.vae, ro.latents.float(), batch, 1 + j * self.model_cfg.frames_per_block, self.window)
        return win.batch, win

    def train_step(self, trainer: Trainer, step: int) -> dict[str, float]:
        d = self.cfg.dmd
        accum = trainer.loop.grad_accum
        logs: dict[str, float] = {}
        # the critic: flow matching on fresh generator samples
        critic = 0.0
        for c in range(max(0, d.critic_steps)):
            for micro in range(accum):
                batch = self.data.batch(step, micro, accum)
                g = trainer.generator("critic", c, micro)
                j, blocks = self._window_plan(batch, g)
                with trainer.autocast(), torch.no_grad():
                    ro, _, _ = self._rollout(batch, g, exit_step=self._exit_step(trainer, "critic", c, micro),
                                             num_blocks=blocks)
                    gen, _ = self._scored(ro, batch, j)
                with trainer.autocast():
                    sigma = sample_sigmas(gen.latents.shape[0], self.cfg.flow, g)
                    if d.sigma == "clamp_shifted":                 # Self-Forcing clamps the critic's σ too
                        sigma = sigma.clamp(d.min_t, d.max_t)
                    loss = flow_matching_loss(self.fake, gen, sigma, torch.randn(gen.latents.shape, generator=g))
                (loss.float() / accum).backward()
                critic += float(loss.detach()) / accum / d.critic_steps
            logs.update(self.trainer_step(trainer, "fake"))
        # the generator: rollout without autograd, Δŝ for the whole sequence, replay block by block
        dmd = 0.0
        exits: list[int] = []
        for micro in range(accum):
            batch = self.data.batch(step, micro, accum)
            g = trainer.generator("generator", micro)
            grad_steps = 0 if d.replay else d.grad_steps
            exit_step = self._exit_step(trainer, "generator", micro)
            j, blocks = self._window_plan(batch, g)
            with trainer.autocast():
                with torch.set_grad_enabled(not d.replay):
                    ro, outs, text = self._rollout(batch, g, grad_steps, exit_step, num_blocks=blocks)
                b = ro.latents.shape[0]
                with torch.no_grad():
                    scored, win = self._scored(ro, batch, j)
                real, fake = self._scores(scored, b)
                grad, val = score_difference(real, fake, scored.latents, self._sigma(b, g),
                                             torch.randn(scored.latents.shape, generator=g), d.guidance)
                scale = 1.0 / (grad[:, :, 1:].numel() * accum)
                if win is not None:
                    grad = win.scatter(grad, ro.latents.shape[2])
                if d.replay:
                    replay_backward(self.student, self.model_cfg, ro, grad, text, batch.actions, batch.R, batch.P,
                                    d.grad_steps, scale, start_block=j)
                else:
                    naive_backward(outs, ro, grad, scale)
            dmd += val / accum
            exits.append(exit_step)
        reg = self._regression(trainer, step)
        logs.update(self.trainer_step(trainer, "student"))
        w = self.cfg.regression.weight_at(step)
        if self.cfg.regression.weight > 0:
            logs["regression"] = reg
            logs["regression_weight"] = w
        return {"loss": dmd + w * reg, "dmd": dmd, "critic": critic, "exit_step": sum(exits) / len(exits), **logs}

    def _regression(self, trainer: Trainer, step: int) -> float:
        """Back-propagate the step's regression weight (:meth:`RegressionConfig.weight_at`) × the hybrid-forcing ODE
        regression of one pair batch per micro-batch into the student (before its optimizer step); returns the mean
        regression loss (0 when the weight is 0)."""
        rc = self.cfg.regression
        weight = rc.weight_at(step)
        if weight <= 0:
            return 0.0
        accum = trainer.loop.grad_accum
        total = 0.0
        for micro in range(accum):
            pair = pair_batch(self.pair_files, step, micro, accum, rc.batch_size)
            K, steps = draw_hybrid(rc.hybrid, pair, self.model_cfg, trainer.generator("regression", micro))
            with trainer.autocast():
                loss = hybrid_forcing_loss(self.student, pair, self.model_cfg, K, steps, rc.hybrid.context_grad)
            (weight * loss.float() / accum).backward()
            total += float(loss.detach()) / accum
        return total

    def _scores(self, batch: LatentBatch, b: int):
        """(real(x, t, cond), fake(x, t)) velocity functions bound to the batch's conditioning."""
        from relic.training.teacher import unconditional

        tc = self.real.prepare_text(batch.text, batch.text_mask)
        te = self.real.prepare_text(self.empty[0].expand(b, -1, -1), self.empty[1].expand(b, -1))
        tf = self.fake.prepare_text(batch.text, batch.text_mask)
        a, R, P = batch.actions, batch.R, batch.P
        tu, *cmd_u = unconditional(self.cfg.dmd.guide, tc, te, a, R, P)

        def real(x, t, cond):
            return self.real(x, t, tc, None, a, R, P) if cond else self.real(x, t, tu, None, *cmd_u)

        def fake(x, t):
            return self.fake(x, t, tf, None, a, R, P)

        return real, fake

    @staticmethod
    def trainer_step(trainer: Trainer, name: str) -> dict[str, float]:
        return trainer.optimizer_step(name)

    def sample(self, trainer: Trainer, step: int) -> None:
        from relic.training.teacher import write_sample_video

        batch = self.data.batch(0, 0, 1)
        stu = trainer.units["student"].weights(ema=True)
        text = (batch.text[:1], batch.text_mask[:1])
        with trainer.autocast(), torch.no_grad():
            b1 = LatentBatch(batch.latents[:1], batch.actions[:1], batch.R[:1], batch.P[:1], batch.text[:1],
                             batch.text_mask[:1], batch.captions[:1])
            ro, _ = rollout(stu, self.model_cfg, b1.latents[:, :, :1], text, b1.actions, b1.R, b1.P,
                            self._num_blocks(b1), trainer.generator("sample"))
        err = float(((ro.latents.float() - b1.latents[:, :, :ro.latents.shape[2]]) ** 2)[:, :, 1:].mean())
        trainer.log(step, {"sample_latent_mse": err}, prefix="eval")
        write_sample_video(self.cfg.vae, ro.latents.float(), b1.latents[:, :, :ro.latents.shape[2]],
                           trainer.out / "samples" / f"step_{step:08d}.mp4", trainer)

    def export(self, trainer: Trainer, directory: Path) -> None:
        trainer.units["student"].weights(ema=True).save_pretrained(directory)


def run(cfg: DMDStageConfig, config_dict: dict, resume: bool = False) -> Path:
    return make_trainer(DMDTask(cfg), cfg.out, cfg.loop, config_dict, cfg.dist).fit(resume=resume)


__all__ = ["RegressionConfig", "rollout", "replay_backward", "naive_backward", "score_difference", "denoise_block", "draw_exit_step",
           "dmd_sigmas", "DMDTask", "DMDStageConfig"]
