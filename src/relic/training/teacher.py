"""Stage 1: the bidirectional long-context teacher (paper §4.1.3, ``relic train teacher``).

Flow matching (rectified flow, :mod:`relic.runtime.sampling` conventions): for clean latents ``x0``
(b c f h w), noise ``ε`` and ``σ = shift(u)`` (Wan's timestep shift of ``u ~ U(0, 1)``, or of a logit-normal
``u``), the DiT sees ``x_σ = (1 − σ) x0 + σ ε`` at timestep ``1000 σ`` and regresses ``v = ε − x0``.

* Image-to-video: latent 0 stays clean at timestep 0 and is left out of the loss.
* Text dropout: with probability ``text_dropout`` a sample's prompt is replaced by the empty prompt, which
  is the unconditional branch of classifier-free guidance at sampling time.
* Command dropout: with probability ``command_dropout`` a sample's actions and poses are dropped (the DiT's
  action and pose offsets are zero, as without a command), ``joint_dropout`` of the samples losing both text
  and command. Guidance can then act on the command (``sample.guide``), not only on the text.
* Palindrome augmentation and the short-to-long curriculum (``data.curriculum``, up to the paper's 20 s)
  come from :class:`relic.training.batches.LatentSamples`; the RoPE extension for long horizons is the
  model's ``dit.rope_scaling`` / ``dit.rope_scale`` (set them in ``model:``).
* Bidirectional: full attention over every latent of the sample (no mask).

:func:`teacher_sample` is the Euler sampler with CFG (``N`` steps) that generates from the teacher: the
quality reference for the student. ``sample.sampler: renoise`` replaces the ODE by the student's way of sampling
(predict x0, re-noise it with fresh noise to the next σ), which holds the scene where this small teacher's ODE
path breaks it into a mosaic of token-sized cells (docs/training.md, "Round 6 teacher"). The export (``<out>/final``) is a ``DiT.from_pretrained`` directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from relic.errors import UserError
from relic.runtime.sampling import cfg_sample, check_sampler, euler_sigmas, shift_sigma
from relic.training.batches import LatentBatch, LatentDataConfig, LatentSamples
from relic.training.config import LoopConfig, OptimConfig, model_config
from relic.training.distributed import DistributedConfig, make_trainer
from relic.training.loop import Task, Trainer
from relic.training.losses import flow_matching_loss


@dataclass
class FlowConfig:
    shift: float = 5.0                  # Wan's timestep shift (training); the sampler has its own below
    timestep_sampling: str = "uniform"  # "uniform" or "logit_normal" for u before the shift
    text_dropout: float = 0.1           # probability of the empty prompt (CFG)
    command_dropout: float = 0.0        # probability of no actions and no pose (command guidance)
    joint_dropout: float = 0.0          # probability of both at once (<= each of the two)


@dataclass
class SampleConfig:
    steps: int = 20                     # Euler steps
    guidance: float = 3.0               # CFG scale
    shift: float = 5.0
    latents: int = 9                    # latents generated for the sample video
    guide: str = "text"                 # what the unconditional branch drops: "text", "command" or "all"
    sampler: str = "euler"              # "euler" (the ODE) or "renoise" (x0, then fresh noise: the student's way)


@dataclass
class TeacherStageConfig:
    out: str = "runs/tiny/teacher"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)
    init: str | None = None             # start from this DiT directory
    vae: str | None = "runs/tiny/vae/final"   # for decoding sample videos (None: latents only)
    data: LatentDataConfig = field(default_factory=LatentDataConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-4, warmup_steps=100))
    loop: LoopConfig = field(default_factory=LoopConfig)
    dist: DistributedConfig = field(default_factory=DistributedConfig)   # torchrun: FSDP2 + Ulysses
    probe_batches: int = 4              # batches of the conditioning probe at each evaluation (0: off)


def sample_sigmas(b: int, flow: FlowConfig, generator: torch.Generator) -> torch.Tensor:
    """(b,) shifted noise levels σ for flow-matching training."""
    if flow.timestep_sampling == "uniform":
        u = torch.rand(b, generator=generator)
    elif flow.timestep_sampling == "logit_normal":
        u = torch.sigmoid(torch.randn(b, generator=generator))
    else:
        raise UserError(f"flow.timestep_sampling must be 'uniform' or 'logit_normal', got {flow.timestep_sampling!r}")
    return shift_sigma(u, flow.shift)


def dropout_masks(b: int, flow: FlowConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(b,) bool masks (drop the text, keep the command) from one uniform draw u per sample.

    Text is dropped for u < text_dropout (the draw of the text-only dropout before, so configs without
    command dropout train bitwise as they did); the command for u in [text − joint, text − joint + command):
    both for a fraction ``joint_dropout``, only the text for ``text − joint``, only the command for
    ``command − joint``.
    """
    t, c, j = flow.text_dropout, flow.command_dropout, flow.joint_dropout
    if not (0.0 <= j <= min(t, c) and t + c - j <= 1.0):
        raise UserError(f"flow dropouts must satisfy 0 <= joint_dropout <= min(text_dropout, command_dropout) and "
                        f"text + command - joint <= 1; got text {t}, command {c}, joint {j}")
    u = torch.rand(b, generator=generator)
    drop_cmd = (u >= t - j) & (u < t - j + c)
    return u < t, ~drop_cmd


def drop_text(batch: LatentBatch, empty: tuple[torch.Tensor, torch.Tensor], drop: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the text of the samples where ``drop`` (b,) is True by the empty prompt."""
    b = batch.text.shape[0]
    e, em = empty
    text = torch.where(drop.view(b, 1, 1), e.expand_as(batch.text).to(batch.text), batch.text)
    mask = torch.where(drop.view(b, 1), em.expand_as(batch.text_mask), batch.text_mask)
    return text, mask


@torch.no_grad()
def teacher_sample(dit, first: torch.Tensor, num_latents: int, text: torch.Tensor, text_mask: torch.Tensor,
                   empty: tuple[torch.Tensor, torch.Tensor], actions: torch.Tensor, R: torch.Tensor,
                   P: torch.Tensor, steps: int = 20, guidance: float = 3.0, shift: float = 5.0,
                   generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                   sigmas_out: list[float] | None = None, spacing: str = "shifted", guide: str = "text",
                   sampler: str = "euler") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Generate ``num_latents`` latents from the clean first latent with the Euler (or re-noising) CFG sampler.

    Args:
        first: (b c 1 h w) clean first latent (the start image's single-image latent, as the runtime's);
            actions (b 1+4(f−1) 13); R, P (b f 3 3), (b f 3).
        empty: unconditional text (b|1 L d), mask (b|1 L).
        sigmas_out: noise levels at which to also return the trajectory (each becomes a sampler knot;
            :func:`ode_sigma_schedule` builds the schedule). Otherwise only the result is returned.
        spacing: with ``sigmas_out``, how the ``steps`` Euler steps are spread between the knots:
            ``"shifted"`` evenly in *unshifted* time, i.e. the teacher's own schedule
            (:func:`relic.runtime.sampling.euler_sigmas` with ``shift``, exactly when the knots are on it);
            ``"linear"`` evenly in σ (before: one Euler step from σ = 1 to the student's 0.9375 at 20 steps).
        guide: what classifier-free guidance's unconditional branch drops (:data:`GUIDES`): ``"text"`` the
            prompt (empty prompt, same command), ``"command"`` the actions and poses (same prompt), ``"all"``
            both. The DiT must have been trained with that dropout (``flow.text_dropout`` /
            ``command_dropout`` / ``joint_dropout``).
        sampler: :data:`SAMPLERS`: ``"euler"`` integrates the probability-flow ODE; ``"renoise"`` predicts x0 at
            each σ and re-noises it to the next σ with fresh noise from ``generator`` (:func:`relic.runtime.sampling.cfg_sample`), the
            student's sampler (:func:`relic.runtime.sampling.student_denoise`) on the teacher's schedule.
    Returns:
        x0 (b c f h w) and the trajectory latents at ``sigmas_out`` (each (b c f h w)).
    """
    b, c, _, h, w = first.shape
    if noise is None:
        noise = torch.randn((b, c, num_latents, h, w), generator=generator)
    x = torch.cat([first, noise[:, :, 1:]], dim=2)
    eu, emu = empty[0].expand(b, -1, -1), empty[1].expand(b, -1)
    ctx_c = dit.prepare_text(text, text_mask)
    ctx_u, *cmd_u = unconditional(guide, ctx_c, dit.prepare_text(eu, emu), actions, R, P)

    def model(xx: torch.Tensor, t: torch.Tensor, cond: bool) -> torch.Tensor:
        t = t.clone()
        t[:, 0] = 0.0
        v = dit(xx, t, ctx_c, None, actions, R, P) if cond else dit(xx, t, ctx_u, None, *cmd_u)
        v = v.float()
        v[:, :, 0] = 0.0                                  # the first latent stays clean
        return v

    check_sampler(sampler)
    if spacing not in SPACINGS:
        raise UserError(f"ODE-pair spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    knots = sigmas_out or []
    sched = (euler_sigmas(steps, shift) if not knots
             else ode_sigma_schedule(knots, steps, shift if spacing == "shifted" else 1.0))
    return cfg_sample(model, x, sched, guidance, knots, sampler, generator)


SPACINGS = ("shifted", "linear")
GUIDES = ("text", "command", "all")   # what the unconditional branch of CFG drops


def check_guide(guide: str) -> None:
    """A one-line error for a guide that is not one of :data:`GUIDES`."""
    if guide not in GUIDES:
        raise UserError(f"guidance must drop one of {', '.join(GUIDES)}, got {guide!r}")


def unconditional(guide: str, text, empty_text, actions, R, P) -> tuple:
    """CFG's unconditional inputs (text, actions, R, P) for ``guide`` (:data:`GUIDES`): ``"text"`` keeps the
    command and takes the empty prompt, ``"command"`` keeps the prompt and drops actions and poses (None: the
    DiT's no-command forward), ``"all"`` drops both."""
    check_guide(guide)
    cmd = (actions, R, P) if guide == "text" else (None, None, None)
    return (text if guide == "command" else empty_text, *cmd)


def unshift_sigma(sigma: float, shift: float) -> float:
    """The inverse of Wan's shift: u with ``shift_sigma(u, shift) == sigma``."""
    return sigma / (shift - (shift - 1) * sigma)


def ode_sigma_schedule(knots: list[float], steps: int, shift: float = 1.0) -> list[float]:
    """A decreasing σ schedule from 1 to 0 through every knot, ``steps`` Euler steps in all.

    The steps are split between the knots in proportion to their span in unshifted time u (σ = shift(u)) and
    spaced evenly in u inside each span: with ``shift`` the teacher sampler's, this is the sampler's own
    schedule (:func:`relic.runtime.sampling.euler_sigmas`), exactly so when every knot lies on it (e.g. the
    student's t ∈ {1000, 750, 500, 250} and ``steps`` a multiple of 4 with equal shifts). ``shift=1`` spaces
    the steps evenly in σ. Knots appear in the result exactly as given.
    """
    pts = sorted({1.0, 0.0, *[float(k) for k in knots]}, reverse=True)
    us = [unshift_sigma(p, shift) for p in pts]
    spans = [a - b for a, b in zip(us[:-1], us[1:])]
    n = [max(1, round(steps * s / sum(spans))) for s in spans]
    out = [pts[0]]
    for a, b, k, sb in zip(us[:-1], us[1:], n, pts[1:]):
        out.extend(float(shift_sigma(a + (b - a) * (i + 1) / k, shift)) for i in range(k - 1))
        out.append(sb)
    return out


def stage_windows(config: str, seconds: float, batch_size: int = 4) -> LatentSamples:
    """For diagnostics: a teacher stage's training data as fixed-length windows.

    ``config`` is the teacher stage's YAML (or a run's config.json); the curriculum is replaced by ``seconds``.
    ``.batch(i, 0, 1)`` of the result is batch i of ``batch_size`` windows.
    """
    from relic.models.text import build_text_encoder
    from relic.training.config import load_stage_config

    cfg = load_stage_config(TeacherStageConfig, config, [f"data.seconds={seconds}", "data.curriculum=[]",
                                                         f"data.batch_size={batch_size}"])
    mcfg = model_config(cfg.preset, cfg.model)
    return LatentSamples(cfg.data, build_text_encoder(mcfg.text_encoder, mcfg.text_len))


def add_window_args(parser, seconds: float = 3.0) -> None:
    """The diagnostics scripts' window options: ``--config`` (a teacher stage's YAML: its data), ``--seconds``,
    ``--batches``, ``--first-batch`` and ``--min-motion`` (the mean |action| a window must show on an axis)."""
    parser.add_argument("--config", required=True, help="a teacher stage's YAML: its data")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--first-batch", type=int, default=10_000)
    parser.add_argument("--min-motion", type=float, default=0.3)


def window_batches(args) -> list[LatentBatch]:
    """Batches ``first_batch`` .. ``first_batch + batches − 1`` of :func:`stage_windows` for :func:`add_window_args`'
    options: the same windows in every script that takes them."""
    data = stage_windows(args.config, args.seconds)
    return [data.batch(args.first_batch + i, 0, 1) for i in range(args.batches)]


def teacher_and_windows(teacher: str, config: str, seconds: float, batch_size: int = 4):
    """For diagnostics: the teacher DiT (eval mode) and :func:`stage_windows` of its stage's config."""
    from relic.models.dit import DiT

    return DiT.from_pretrained(teacher).eval(), stage_windows(config, seconds, batch_size)


def init_dit(init: str, dit_overrides: dict | None):
    """Load the DiT to start from (RELIC, original Wan or diffusers format), then apply the stage's
    ``model.dit`` overrides (e.g. ``rope_scaling: ntk`` for the 20 s horizon) on top of the checkpoint's own
    config. Overrides that change a weight's shape are refused with one error naming them, except
    ``num_layers`` = a multiple of the checkpoint's: the network is deepened by block expansion
    (:func:`relic.models.weights.grow_depth`), which computes exactly the checkpoint's function at step 0."""
    import dataclasses

    from relic.config import DiTConfig, config_from_dict, config_to_dict
    from relic.models.dit import DiT

    dit = DiT.from_pretrained(init)
    if not dit_overrides:
        return dit
    cfg = config_from_dict(DiTConfig, {**config_to_dict(dit.cfg), **dit_overrides}, source="model.dit")
    if cfg == dit.cfg:
        return dit
    new = DiT(cfg)
    theirs, ours = dit.state_dict(), new.state_dict()
    if cfg.num_layers != dit.cfg.num_layers:        # deeper: block expansion, the same function at step 0
        from relic.models.weights import grow_depth

        try:
            theirs = grow_depth(theirs, dit.cfg.num_layers, cfg.num_layers)
        except ValueError as e:
            raise UserError(f"model.dit.num_layers: {e}", source=str(init)) from None
    bad = sorted(k for k in ours if k in theirs and theirs[k].shape != ours[k].shape)
    if bad:
        changed = sorted(f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(dit.cfg, f.name))
        raise UserError(f"model.dit overrides ({', '.join(changed)}) change the shapes of {len(bad)} weights of "
                        f"the init checkpoint (e.g. {bad[0]}); only shape-free settings can be overridden",
                        source=str(init))
    from relic.models.weights import DIT_NEW_OK, load_checked

    load_checked(new, theirs, str(init), new_ok=DIT_NEW_OK)   # new zero-initialized layers (action_coords, camera_rays)
    new.load_report = getattr(dit, "load_report", None)
    return new


class TeacherTask(Task):
    name = "teacher"

    def __init__(self, cfg: TeacherStageConfig):
        self.cfg = cfg
        self.model_cfg = model_config(cfg.preset, cfg.model)

    def build(self, trainer: Trainer) -> None:
        from relic.models.dit import DiT
        from relic.models.text import build_text_encoder

        cfg = self.cfg
        dropout_masks(1, cfg.flow, torch.Generator())                       # validate before any work
        check_guide(cfg.sample.guide)
        check_sampler(cfg.sample.sampler)
        self.dit = init_dit(cfg.init, (cfg.model or {}).get("dit")) if cfg.init else DiT(self.model_cfg.dit)
        self.text_encoder = build_text_encoder(self.model_cfg.text_encoder, self.model_cfg.text_len)
        if self.text_encoder.dim != self.dit.cfg.text_dim:
            raise UserError(f"the text encoder gives {self.text_encoder.dim}-d states but dit.text_dim is "
                            f"{self.dit.cfg.text_dim}")
        self.data = LatentSamples(cfg.data, self.text_encoder)
        self.empty = self.text_encoder.empty(1)
        trainer.add_unit("dit", self.dit, cfg.optim)

    def samples_per_step(self) -> int:
        return self.cfg.data.batch_size

    def train_step(self, trainer: Trainer, step: int) -> dict[str, float]:
        fl = self.cfg.flow

        def loss_fn(micro: int):
            batch = self.data.batch(step, micro, trainer.loop.grad_accum)
            g = getattr(trainer, "sample_generator", trainer.generator)("noise", micro)   # differs per data shard
            sigma = sample_sigmas(batch.latents.shape[0], fl, g)
            noise = torch.randn(batch.latents.shape, generator=g)
            drop, keep = dropout_masks(batch.latents.shape[0], fl, g)
            text, mask = drop_text(batch, self.empty, drop)
            loss = flow_matching_loss(self.dit, batch, sigma, noise, text, mask,
                                      None if bool(keep.all()) else keep)
            return loss, {"latents": float(batch.num_latents)}

        return trainer.standard_step(loss_fn)

    def evaluate(self, trainer: Trainer, step: int) -> dict[str, float]:
        """The conditioning probe (:mod:`relic.training.probe`) on the first curriculum phase's batches 0..n-1:
        flow loss with the true vs mirrored vs static command (``mirror_gap`` > 0: the teacher uses direction)."""
        if self.cfg.probe_batches <= 0:
            return {}
        from relic.training.probe import action_sensitivity

        batches = [self.data.batch(i, 0, 1) for i in range(self.cfg.probe_batches)]
        with trainer.autocast():
            out = action_sensitivity(trainer.units["dit"].weights(ema=True), batches)
        return {f"probe/{k}": v for k, v in out.items()}

    def sample(self, trainer: Trainer, step: int) -> None:
        sc = self.cfg.sample
        batch = self.data.batch(0, 0, 1)
        f = min(sc.latents, batch.num_latents)
        batch = batch.select(f)
        dit = trainer.units["dit"].weights(ema=True)
        with trainer.autocast():
            x0, _ = teacher_sample(dit, batch.latents[:1, :, :1], f, batch.text[:1], batch.text_mask[:1], self.empty,
                                   batch.actions[:1], batch.R[:1], batch.P[:1], sc.steps, sc.guidance, sc.shift,
                                   generator=trainer.generator("sample"), guide=sc.guide, sampler=sc.sampler)
        err = float(((x0.float() - batch.latents[:1]) ** 2)[:, :, 1:].mean())
        trainer.log(step, {"sample_latent_mse": err}, prefix="eval")
        write_sample_video(self.cfg.vae, x0.float(), batch.latents[:1], trainer.out / "samples" / f"step_{step:08d}.mp4",
                           trainer)

    def export(self, trainer: Trainer, directory: Path) -> None:
        trainer.units["dit"].weights(ema=True).save_pretrained(directory)


def write_sample_video(vae_dir: str | None, generated: torch.Tensor, reference: torch.Tensor, path: Path,
                       trainer: Trainer, fps: float = 16.0) -> None:
    """Decode generated and reference latents (1 c f h w) with the VAE; write them side by side (mp4 + TB)."""
    if not vae_dir or not Path(vae_dir).is_dir():
        return
    from relic.models.autoencoder import load_vae
    from relic.training.frames import to_uint8
    from relic.video import write_mp4

    vae = load_vae(vae_dir).eval()
    with torch.no_grad():
        a = to_uint8(vae.decode(generated.float()))[0]
        b = to_uint8(vae.decode(reference.float()))[0]
    side = np.concatenate([a, b], axis=2)
    write_mp4(path, side, fps=fps)
    trainer.writer.add_images("samples/generated_vs_data", side[[0, len(side) // 2, -1]], trainer.step,
                              dataformats="NHWC")


def run(cfg: TeacherStageConfig, config_dict: dict, resume: bool = False) -> Path:
    return make_trainer(TeacherTask(cfg), cfg.out, cfg.loop, config_dict, cfg.dist).fit(resume=resume)
