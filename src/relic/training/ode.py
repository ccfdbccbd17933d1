"""Stage 2: ODE pairs from the teacher and the student's initialization with hybrid forcing (paper §4.4.1).

``relic train ode-pairs`` runs the teacher's Euler CFG sampler (:func:`relic.training.teacher.teacher_sample`)
from the sample's clean first latent (the start frame's single-image latent, as the runtime encodes it) on a
σ schedule that passes through the student's few-step noise levels (:func:`relic.runtime.sampling.student_sigmas`,
e.g. t ∈ {1000, 750, 500, 250} after Wan's shift). ``spacing: shifted`` (default) spreads the Euler steps evenly
in unshifted time, the teacher's own schedule; ``spacing: linear`` (the earlier pairs) spreads them evenly in σ,
which at 20 steps takes a single Euler step from σ = 1 to the student's 0.9375. ``sample.sampler: renoise``
runs the student's own sampler instead (x0, then fresh noise to the next σ; with ``steps`` equal to the
student's step count the knots are exactly its steps, so the pairs are the process the student runs). It stores, per sample, one
safetensors file ``pair_NNNNNN.safetensors`` with

* ``trajectory`` (k c f h w): the latents at the student's k timesteps (``trajectory[0]`` is the noise),
* ``x0`` (c f h w): the clean result (latent 0 is the clean conditioning frame),
* ``actions`` (1+4(f−1) 13), ``R`` (f 3 3), ``P`` (f 3), ``text`` (L d), ``text_mask`` (L): all conditioning,

with the caption and the σ values in the metadata. Files are written atomically and existing ones are
skipped, so the command resumes; files of an older format (``relic-ode-pair-1``: made from caches whose latent 0
was the clip's video latent) are regenerated, and reading one is a one-line error.

``relic train ode-init`` regresses the block-causal student (initialized from the teacher) onto those
trajectories with **hybrid forcing**. Latent 0 is the clean first frame; the other latents form B blocks of
``frames_per_block``. For each sample, K of the B blocks are noisy (diffusion forcing): the last K. The first
B − K blocks are clean (teacher forcing): they pass through the student at the context timestep with
``return_kv`` (block-causal attention among themselves), and their K/V become the context exactly as the
runtime compresses it, through :func:`relic.memory.build_context` (first frame + compressed memory + window).
The K noisy blocks, each at a student timestep drawn independently from the trajectory, attend to that
context and block-causally to each other, uncompressed; the loss is ``‖x̂0 − x0‖²`` on them.
``hybrid.k_min``/``k_max`` bound K, and ``hybrid.teacher_forcing`` is the mixing: the probability that a
sample uses a clean compressed prefix at all (otherwise K = B, pure diffusion forcing). As at run time
(:meth:`relic.runtime.student.Student.write_first`), latent 0 is at timestep 0 and the rest of the clean prefix
at the context timestep (the same unless ``sampler.context_noise`` > 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from relic.errors import UserError
from relic.fileio import atomic_path
from relic.precision import resolve_precision
from relic.runtime.sampling import context_sigma, student_sigmas
from relic.training.batches import LatentDataConfig, LatentSamples
from relic.training.config import LoopConfig, OptimConfig, model_config
from relic.training.distributed import DistributedConfig, data_shard, make_trainer
from relic.training.loop import Task, Trainer
from relic.training.teacher import SampleConfig, check_guide, check_sampler, teacher_sample

PAIR_FORMAT = "relic-ode-pair-2"     # 2: single-image latent 0 (latent cache format 2)


# ------------------------------------------------------------------------------------------ ODE pairs

@dataclass
class ODEPairsConfig:
    out: str = "runs/tiny/ode_pairs"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)     # sampler (student timesteps, shift), text encoder
    teacher: str = "runs/tiny/teacher/final"
    data: LatentDataConfig = field(default_factory=LatentDataConfig)
    sample: SampleConfig = field(default_factory=lambda: SampleConfig(steps=24, guidance=3.0, shift=5.0))
    num_samples: int = 64
    spacing: str = "shifted"                       # Euler steps even in unshifted time ("linear": even in σ)
    precision: str = "bf16"                        # "auto", "bf16" or "fp32" (relic.precision)
    seed: int = 0
    progress: bool = True


def pair_path(out: str | Path, i: int) -> Path:
    return Path(out) / f"pair_{i:06d}.safetensors"


def write_pair(path: Path, trajectory: torch.Tensor, x0: torch.Tensor, actions: torch.Tensor, R: torch.Tensor,
               P: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, caption: str, sigmas: list[float]) -> None:
    tensors = {"trajectory": trajectory.float().contiguous(), "x0": x0.float().contiguous(),
               "actions": actions.float().contiguous(), "R": R.float().contiguous(), "P": P.float().contiguous(),
               "text": text.float().contiguous(), "text_mask": text_mask.to(torch.uint8).contiguous()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": PAIR_FORMAT, "caption": caption, "sigmas": json.dumps(sigmas)})


def read_pair(path: str | Path) -> dict:
    """A pair file -> dict of tensors (+ ``caption``, ``sigmas``)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            fmt = meta.get("format")
            if fmt != PAIR_FORMAT and isinstance(fmt, str) and fmt.startswith("relic-ode-pair-"):
                raise UserError(f"ODE pair format {fmt} is out of date (its latent 0 is a video latent); "
                                f"re-run `relic train ode-pairs` with the same out to regenerate it", source=str(path))
            if fmt != PAIR_FORMAT:
                raise UserError("not an ODE pair file (run `relic train ode-pairs`)", source=str(path))
            out = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read ODE pair ({e.__class__.__name__})", source=str(path)) from None
    out["text_mask"] = out["text_mask"].bool()
    out["caption"] = meta.get("caption", "")
    out["sigmas"] = json.loads(meta.get("sigmas", "[]"))
    return out


def list_pairs(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        raise UserError("ODE pair directory not found (run `relic train ode-pairs`)", source=str(d))
    files = sorted(d.glob("pair_*.safetensors"))
    if not files:
        raise UserError("no ODE pairs in the directory (run `relic train ode-pairs`)", source=str(d))
    return files


def _pair_done(path: Path) -> bool:
    """An existing pair file of the current format (older formats are regenerated)."""
    if not path.exists():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == PAIR_FORMAT
    except (OSError, ValueError):
        return False


def make_pairs(cfg: ODEPairsConfig) -> Path:
    """Generate ``cfg.num_samples`` pair files into ``cfg.out`` (skipping existing ones)."""
    import contextlib

    from tqdm import tqdm

    from relic.models.dit import DiT
    from relic.models.text import build_text_encoder

    from relic.training.teacher import SPACINGS

    if cfg.spacing not in SPACINGS:
        raise UserError(f"spacing must be one of {', '.join(SPACINGS)}, got {cfg.spacing!r}")
    check_guide(cfg.sample.guide)                                       # validate before any work
    check_sampler(cfg.sample.sampler)
    mcfg = model_config(cfg.preset, cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(cfg.num_samples) if not _pair_done(pair_path(out, i))]
    # under torchrun every rank writes its share of the pairs (pair i on rank i % world); no collectives
    todo = todo[int(os.environ.get("RANK", "0"))::int(os.environ.get("WORLD_SIZE", "1"))]
    if not todo:
        return out
    teacher = DiT.from_pretrained(cfg.teacher).eval().requires_grad_(False)
    text_encoder = build_text_encoder(mcfg.text_encoder, mcfg.text_len)
    data = LatentSamples(cfg.data, text_encoder)
    empty = text_encoder.empty(1)
    sigmas = student_sigmas(mcfg.sampler)
    bf16 = resolve_precision(cfg.precision, "cpu") == "bf16"
    ac = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    for i in tqdm(todo, desc="ode-pairs", unit="sample", disable=not cfg.progress):
        saved = data.cfg.batch_size
        data.cfg.batch_size = 1
        batch = data.batch(i, 0, 1)
        data.cfg.batch_size = saved
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + i)
        with ac:
            x0, traj = teacher_sample(teacher, batch.latents[:, :, :1], batch.num_latents, batch.text, batch.text_mask,
                                      empty, batch.actions, batch.R, batch.P, cfg.sample.steps, cfg.sample.guidance,
                                      cfg.sample.shift, generator=g, sigmas_out=sigmas, spacing=cfg.spacing,
                                      guide=cfg.sample.guide, sampler=cfg.sample.sampler)
        write_pair(pair_path(out, i), torch.stack([t[0] for t in traj]), x0[0], batch.actions[0], batch.R[0],
                   batch.P[0], batch.text[0], batch.text_mask[0], batch.captions[0], sigmas)
    return out


def run_pairs(cfg: ODEPairsConfig, config_dict: dict, resume: bool = False) -> Path:
    return make_pairs(cfg)


# ------------------------------------------------------------------------------------ hybrid forcing

@dataclass
class HybridConfig:
    k_min: int = 1                 # fewest noisy blocks
    k_max: int | None = None       # most noisy blocks (None: all blocks)
    teacher_forcing: float = 0.8   # probability of a clean compressed prefix (else K = B: diffusion forcing)
    context_grad: bool = True      # back-propagate through the clean prefix's K/V


@dataclass
class ODEInitStageConfig:
    out: str = "runs/tiny/ode_init"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)
    init: str = "runs/tiny/teacher/final"     # the student starts from the teacher
    pairs: str = "runs/tiny/ode_pairs"
    batch_size: int = 1
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, warmup_steps=50))
    loop: LoopConfig = field(default_factory=LoopConfig)
    dist: DistributedConfig = field(default_factory=DistributedConfig)   # torchrun: FSDP2 + Ulysses


def block_causal_mask(frames: int, tokens_per_frame: int, frames_per_block: int, context: int = 0,
                      first_alone: bool = True) -> torch.Tensor:
    """Bool (1 1 n context+n): every token sees the context and the tokens of its own and earlier blocks.

    Frames are grouped into blocks of ``frames_per_block``; with ``first_alone`` frame 0 is a block by itself
    (the clean first frame of the stream).
    """
    f = torch.arange(frames)
    blk = (f - 1).div(frames_per_block, rounding_mode="floor") + 1 if first_alone else f.div(
        frames_per_block, rounding_mode="floor")
    if first_alone:
        blk[0] = 0
    tok = blk.repeat_interleave(tokens_per_frame)
    cur = tok[:, None] >= tok[None, :]
    mask = torch.cat([torch.ones(len(tok), context, dtype=torch.bool), cur], dim=1)
    return mask[None, None]


def hybrid_forcing_loss(student, pair: dict, mcfg, K: int, step_index: torch.Tensor, context_grad: bool = True
                        ) -> torch.Tensor:
    """The hybrid-forcing regression loss ‖x̂0 − x0‖² over the noisy latents (see :func:`hybrid_forward`)."""
    x0_hat, target = hybrid_forward(student, pair, mcfg, K, step_index, context_grad)
    return ((x0_hat - target) ** 2).mean()


def hybrid_forward(student, pair: dict, mcfg, K: int, step_index: torch.Tensor, context_grad: bool = True
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's x̂0 of the K noisy blocks of one batch of ODE pairs under hybrid forcing.

    Args:
        student: the DiT.
        pair: batched pair tensors: trajectory (b k c f h w), x0 (b c f h w), actions, R, P, text, text_mask.
        mcfg: RelicConfig (memory, sampler, frames_per_block).
        K: noisy blocks (the last K of B); K = B means only the first frame is clean.
        step_index: (K,) index into the student's timesteps for each noisy block.
    Returns:
        (x̂0, x0) of the noisy latents, each (b c K·n h w), float32.
    """
    from relic.memory import build_context, split_block_kv

    traj, x0 = pair["trajectory"], pair["x0"]
    b, c, f, h, w = x0.shape
    fpb = mcfg.frames_per_block
    if (f - 1) % fpb:
        raise UserError(f"{f} latents do not split into a first frame + blocks of {fpb}")
    B = (f - 1) // fpb
    if not 1 <= K <= B:
        raise ValueError(f"K must be in [1, {B}], got {K}")
    n_clean = 1 + (B - K) * fpb
    ph, pw = student.cfg.patch_size[1:]
    grid = (h // ph, w // pw)
    T = grid[0] * grid[1]
    sig = student_sigmas(mcfg.sampler)
    ctx_t = context_sigma(mcfg.sampler) * mcfg.sampler.num_train_timesteps
    text = student.prepare_text(pair["text"], pair["text_mask"])
    actions, R, P = pair["actions"], pair["R"], pair["P"]

    # 1. the clean prefix -> K/V -> the runtime's context (first frame + compressed memory + window)
    grad_ctx = torch.enable_grad() if context_grad else torch.no_grad()
    with grad_ctx:
        xc = x0[:, :, :n_clean]
        t = torch.full((b, n_clean), ctx_t)
        t[:, 0] = 0.0                                       # the first frame: clean at t = 0, as write_first
        _, kv = student(xc, t, text, None, actions[:, :1 + 4 * (n_clean - 1)], R[:, :n_clean], P[:, :n_clean],
                        attn_mask=block_causal_mask(n_clean, T, fpb), return_kv=True)
        history = split_block_kv(kv, grid, 0)
        ctx = build_context(history, mcfg.memory)
    m = ctx.tokens

    # 2. the K noisy blocks, each at its own student timestep, uncompressed and block-causal
    sl = slice(n_clean, f)
    per_latent = step_index.repeat_interleave(fpb)                        # (K*fpb,)
    xt = torch.stack([traj[:, int(k), :, n_clean + j] for j, k in enumerate(per_latent.tolist())], dim=2)
    sig_lat = torch.tensor([sig[int(k)] for k in per_latent.tolist()], dtype=torch.float32)
    t = (sig_lat * mcfg.sampler.num_train_timesteps).expand(b, -1)
    n_noisy = f - n_clean
    mask = block_causal_mask(n_noisy, T, fpb, context=m, first_alone=False)
    v = student(xt, t, text, None, actions[:, 1 + 4 * (n_clean - 1):], R[:, sl], P[:, sl], frame_offset=n_clean,
                kv_context=ctx.layers(), attn_mask=mask, first_latent=x0[:, :, 0])
    x0_hat = xt.float() - sig_lat.view(1, 1, -1, 1, 1) * v.float()
    return x0_hat, x0[:, :, sl].float()


def pair_batch(files: list[Path], step: int, micro: int, accum: int, batch_size: int) -> dict:
    """The ODE pairs of one (step, micro) batch, stacked: trajectory (b k c f h w), x0 (b c f h w), actions,
    R, P, text, text_mask. Under torchrun each rank reads its data-parallel slice; the files cycle."""
    b = batch_size
    rank, world = data_shard()
    pairs = [read_pair(files[(((step * accum + micro) * world + rank) * b + j) % len(files)]) for j in range(b)]
    keys = ("trajectory", "x0", "actions", "R", "P", "text", "text_mask")
    try:
        return {k: torch.stack([p[k] for p in pairs]) for k in keys}
    except RuntimeError:
        raise UserError("ODE pairs in one batch differ in length; use batch_size=1 or pairs of one horizon") from None


def draw_hybrid(hy: HybridConfig, pair: dict, mcfg, g: torch.Generator) -> tuple[int, torch.Tensor]:
    """One hybrid-forcing draw for a pair batch: (K noisy blocks, (K,) student step index per noisy block).

    With probability ``hy.teacher_forcing`` (and B > 1 blocks) K ∈ [k_min, min(k_max, B − 1)] behind a clean
    prefix, else K = B (diffusion forcing from the first frame alone).
    """
    B = (pair["x0"].shape[2] - 1) // mcfg.frames_per_block
    k_max = min(B, hy.k_max or B)
    k_min = min(max(1, hy.k_min), k_max)
    if float(torch.rand((), generator=g)) < hy.teacher_forcing and B > 1:
        K = int(torch.randint(k_min, min(k_max, B - 1) + 1, (), generator=g)) if k_min <= B - 1 else B
    else:
        K = B
    return K, torch.randint(0, len(mcfg.sampler.timesteps), (K,), generator=g)


class ODEInitTask(Task):
    name = "ode-init"

    def __init__(self, cfg: ODEInitStageConfig):
        self.cfg = cfg
        self.model_cfg = model_config(cfg.preset, cfg.model)

    def build(self, trainer: Trainer) -> None:
        from relic.models.dit import DiT

        self.files = list_pairs(self.cfg.pairs)
        self.student = DiT.from_pretrained(self.cfg.init)
        trainer.add_unit("student", self.student, self.cfg.optim)

    def samples_per_step(self) -> int:
        return self.cfg.batch_size

    def batch(self, step: int, micro: int, accum: int) -> dict:
        return pair_batch(self.files, step, micro, accum, self.cfg.batch_size)

    def train_step(self, trainer: Trainer, step: int) -> dict[str, float]:
        hy = self.cfg.hybrid
        mcfg = self.model_cfg

        def loss_fn(micro: int):
            pair = self.batch(step, micro, trainer.loop.grad_accum)
            K, steps = draw_hybrid(hy, pair, mcfg, trainer.generator("hybrid", micro))
            loss = hybrid_forcing_loss(self.student, pair, mcfg, K, steps, hy.context_grad)
            return loss, {"noisy_blocks": float(K)}

        return trainer.standard_step(loss_fn)

    def export(self, trainer: Trainer, directory: Path) -> None:
        trainer.units["student"].weights(ema=True).save_pretrained(directory)


def run_init(cfg: ODEInitStageConfig, config_dict: dict, resume: bool = False) -> Path:
    return make_trainer(ODEInitTask(cfg), cfg.out, cfg.loop, config_dict, cfg.dist).fit(resume=resume)


def run(cfg, config_dict: dict, resume: bool = False) -> Path:
    """Dispatch on the config type (``relic train ode-pairs`` / ``ode-init``)."""
    if isinstance(cfg, ODEPairsConfig):
        return run_pairs(cfg, config_dict, resume)
    return run_init(cfg, config_dict, resume)
