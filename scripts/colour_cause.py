"""Why did the first relic-tiny autoencoder lose colour? Short from-scratch VAE runs, one change each.

    relic world render --out ~/relic-work/ae_train --clips 200 --seconds 6 --size 224x128 --seed 100
    relic world render --out ~/relic-work/ae_val --clips 8 --seconds 5 --size 224x128 --seed 9100
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/colour_cause.py --data-stats --strip \\
        --variants base,nosample,kl0,norm_off,ssim0,fp32,logvar_m6,l1_ycc       # 400 steps each
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/colour_cause.py --strip --variants norm_off \\
        --steps 800 --eval-every 200 --out ~/relic-work/colour_cause/long
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/colour_cause.py --remeasure --probe \\
        --variants weights/stages/vae,base,nosample                           # + the shipped VAE
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/colour_cause.py --remeasure --probe \\
        --variants norm_off --out ~/relic-work/colour_cause/long

Every variant trains a fresh :class:`relic.models.vae.WanVAE` with the shipped relic-tiny VAE's config
(:data:`WAN_TINY`: base_dim 16) from the same seed on the same batches (9-frame windows, 64x64 crops,
batch 2, drawn by :class:`relic.training.frames.FrameWindows`) with the stage-0a loss
:func:`relic.training.vae.vae_loss` and the optimiser of ``configs/tiny/vae.yaml`` (AdamW lr 3e-4, 100 warmup
steps, cosine over 3,000 steps, grad clip 1, bf16 autocast). Exactly one thing differs per variant
(:data:`VARIANTS`). Every ``--eval-every`` steps (raw weights, fp32, posterior mean) it measures:

* ``flat``: the decoded mean RGB of flat 9-frame 64x64 patches of eight colours (:data:`COLOURS`) and
  ``flat_err``, the mean absolute per-channel error over the six chromatic ones (0-255 levels);
* ``sat_ratio``: mean HSV saturation of reconstructed held-out frames / that of the ground truth, and their PSNR;
* the latent's colour signal-to-noise: ``d_bo`` (blue vs orange), ``d_bg`` (blue vs green) and ``d_kw``
  (black vs white) are the distances between the patches' posterior means in units of the posterior std,
  ``sqrt(sum_c ((mu_a - mu_b) / sigma_c)^2)``: the number of noise standard deviations that separate the two
  colours in what the decoder sees during training (with ``sample_posterior``); ``sigma`` the mean posterior
  std and ``mu_rms`` the RMS of the posterior means of held-out frames;
* ``chroma_ratio``: (std Cb + std Cr) of the reconstructed held-out frames / that of the ground truth (a sepia
  tint keeps HSV saturation but not this), and ``same_sign``: the fraction of their pixels whose R, G and B
  errors share a sign (there the per-channel L1 gradient has no colour component).

Writes ``<out>/<variant>/log.jsonl`` (one line per evaluation), ``<out>/<variant>/model.pt`` and, with
``--strip``, ``<out>/<variant>/strip.png`` (rows: held-out frames and the flat colours; ground truth |
reconstruction). ``--data-stats`` prints the clips' own colour statistics and two trivial reconstructions
(true luma with the clip's mean chroma; 8x pool + bicubic). ``--remeasure`` measures saved runs (or a WanVAE
directory such as ``weights/stages/vae``) without training, ``--probe`` adds a linear read-out of 8x-pooled
Y / Cb / Cr from the latent means (is the colour in the latent at all?). Results and conclusions:
docs/training.md, "Why the first relic-tiny autoencoder lost colour"; a run of 400 steps takes ~3-5 min of one
core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from relic.config import VAEConfig
from relic.models import vae as vae_mod
from relic.models.vae import WanVAE
from relic.training.config import OptimConfig
from relic.training.frames import FrameWindows, to_uint8, to_video
from relic.training.loop import lr_factor
from relic.training.losses import psnr, ssim
from relic.training.vae import VAELossConfig, vae_loss

COLOURS = {"blue": (40, 70, 200), "orange": (230, 120, 20), "green": (60, 140, 60), "magenta": (220, 20, 160),
           "red": (200, 30, 30), "yellow": (230, 210, 40), "black": (10, 10, 10), "white": (245, 245, 245)}
# the shipped relic-tiny autoencoder's architecture (weights/stages/vae/config.json, 2.58 M parameters); the
# relic-tiny preset itself has since moved to the colour-pooled autoencoder (arch "pooled")
WAN_TINY = VAEConfig(arch="wan", z_dim=16, base_dim=16, dim_mult=(1, 2, 4, 4), num_res_blocks=1)
CHROMATIC = ("blue", "orange", "green", "magenta", "red", "yellow")

# one change each against `base` (configs/tiny/vae.yaml); combinations join names with "+"
VARIANTS = {
    "base": "configs/tiny/vae.yaml's loss and optimiser, bf16 autocast",
    "nosample": "loss.sample_posterior = False: the decoder sees the posterior mean, no noise",
    "kl0": "loss.kl = 0",
    "ssim0": "loss.ssim = 0 (L1 only)",
    "fp32": "no bf16 autocast",
    "norm_off": "every RMSNorm replaced by its gain alone (x * gamma): no normalisation",
    "norm_frame": "RMSNorm over (c, h, w) of each frame instead of over c at each pixel",
    "logvar_m6": "quant_conv's log-variance bias starts at -6 (posterior std 0.05 at init, not ~1)",
    "lr1e-3": "lr 1e-3 instead of 3e-4",
    "l1_ycc": "the L1 term taken in an orthonormal opponent colour basis (grey, red-green, blue-yellow), x sqrt(3)",
    "noise0.1": "posterior noise scaled by 0.1 in the forward pass (the KL still sees the true logvar)",
}


# ----------------------------------------------------------------------------------------- variants

def _norm_off(self, x):
    return x * self.gamma


def _norm_frame(self, x):
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    dims = (1, 2, 3) if xf.ndim == 4 else (1, 3, 4)          # (b c h w) or (b c t h w): per sample and frame
    rms = xf.pow(2).mean(dim=dims, keepdim=True).add(1e-6).sqrt()
    return (xf / rms).to(x.dtype) * self.gamma


def apply_variant(name: str) -> dict:
    """Set the module-level patches of ``name`` (a '+'-joined list); return the run's settings."""
    parts = set(name.split("+"))
    unknown = parts - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s) {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    vae_mod.RMSNorm.forward = _ORIG_NORM
    if _ORIG_SAMPLE is not None:
        WanVAE.sample = _ORIG_SAMPLE
    elif "sample" in WanVAE.__dict__:
        del WanVAE.sample                         # back to the inherited one
    if "norm_off" in parts:
        vae_mod.RMSNorm.forward = _norm_off
    if "norm_frame" in parts:
        vae_mod.RMSNorm.forward = _norm_frame
    if "noise0.1" in parts:
        def sample(mean, logvar, generator=None):
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            return mean + 0.1 * torch.exp(0.5 * logvar) * eps
        WanVAE.sample = staticmethod(sample)
    return {
        "loss": VAELossConfig(l1=1.0, ssim=0.0 if "ssim0" in parts else 0.5, kl=0.0 if "kl0" in parts else 1e-4,
                              sample_posterior="nosample" not in parts),
        "bf16": "fp32" not in parts,
        "lr": 1e-3 if "lr1e-3" in parts else 3e-4,
        "logvar_bias": -6.0 if "logvar_m6" in parts else None,
        "loss_fn": opponent_l1_loss if "l1_ycc" in parts else vae_loss,
    }


# rows: grey (luma-like), red-green, blue-yellow; orthonormal, so only the basis of the L1 changes
OPPONENT = torch.tensor([[1, 1, 1], [1, -1, 0], [1, 1, -2]], dtype=torch.float32) / torch.tensor(
    [3 ** 0.5, 2 ** 0.5, 6 ** 0.5]).view(3, 1)


def opponent_l1_loss(vae, x, cfg: VAELossConfig, generator=None):
    """:func:`relic.training.vae.vae_loss` with the L1 taken on opponent colour coordinates.

    Per channel, the L1 gradient is sign(error): wherever a pixel's brightness error is larger than its colour
    error, the three RGB signs agree and the gradient has no colour component at all. In an opponent basis the
    colour coordinates get their own signs. Scaled by sqrt(3) so that a grey error costs what it costs in RGB.
    """
    recon, mean, logvar = vae(x, sample_posterior=cfg.sample_posterior, generator=generator)
    recon = recon.float()
    err = torch.einsum("oc,bcthw->bothw", OPPONENT, recon - x)
    l1 = 3 ** 0.5 * err.abs().mean()
    s = ssim(recon, x)
    kl = vae.kl(mean.float(), logvar.float()).sum() / x.numel()
    loss = cfg.l1 * l1 + cfg.ssim * (1.0 - s) + cfg.kl * kl
    return loss, {"l1": float(l1.detach()), "ssim": float(s.detach()), "kl": float(kl.detach())}


_ORIG_NORM = vae_mod.RMSNorm.forward
_ORIG_SAMPLE = WanVAE.__dict__.get("sample")      # the staticmethod object, or None when inherited


# -------------------------------------------------------------------------------------- measurements

def saturation(frames: np.ndarray) -> float:
    """Mean HSV saturation (max - min) / max of uint8 frames (... 3)."""
    x = frames.astype(np.float32)
    mx, mn = x.max(-1), x.min(-1)
    return float(np.mean(np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)))


def chroma_stats(frames: np.ndarray) -> dict[str, float]:
    """Std of luma and of the two chroma channels (BT.601, 0-255) and the mean saturation."""
    x = frames.reshape(-1, 3).astype(np.float32)
    y = x @ np.array([0.299, 0.587, 0.114], np.float32)
    cb = (x[:, 2] - y) * 0.564
    cr = (x[:, 0] - y) * 0.713
    return {"luma_std": float(y.std()), "cb_std": float(cb.std()), "cr_std": float(cr.std()),
            "saturation": saturation(frames)}


def chroma_spread(frames: np.ndarray) -> float:
    """std(Cb) + std(Cr) of uint8 frames (... 3), 0-255 levels: how much colour varies across the frames."""
    st = chroma_stats(frames)
    return st["cb_std"] + st["cr_std"]


def grey_oracle(frames: np.ndarray) -> np.ndarray:
    """The frames' own luma with their mean chroma everywhere: a reconstruction that is perfect but for colour."""
    x = frames.astype(np.float32)
    y = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return np.clip(y + (x - y).reshape(-1, 3).mean(0), 0, 255).round().astype(np.uint8)


def flat_batch(frames: int = 9, size: int = 64) -> torch.Tensor:
    arr = np.stack([np.broadcast_to(np.array(c, np.uint8), (frames, size, size, 3)) for c in COLOURS.values()])
    return to_video(arr)


@torch.no_grad()
def measure(vae: WanVAE, held: list[np.ndarray]) -> dict:
    vae.eval()
    mean, logvar = vae.encode(flat_batch())
    dec = to_uint8(vae.decode(mean)).reshape(len(COLOURS), -1, 3).mean(1)     # (colours 3)
    names = list(COLOURS)
    mu = mean.flatten(2).mean(2)                                              # (colours z)
    sig = logvar.exp().flatten(2).mean(2).sqrt()                              # (colours z)

    def dist(a: str, b: str) -> float:
        i, j = names.index(a), names.index(b)
        s = 0.5 * (sig[i] + sig[j])
        return float((((mu[i] - mu[j]) / s) ** 2).sum().sqrt())

    truth = np.array([COLOURS[c] for c in CHROMATIC], np.float32)
    got = dec[[names.index(c) for c in CHROMATIC]]
    sats, psnrs, mus, same = [], [], [], []
    for v in held:
        x = to_video(v[None])
        m, _ = vae.encode(x)
        r = to_uint8(vae.decode(m))[0]
        sats.append((saturation(r), saturation(v), chroma_spread(r), chroma_spread(v)))
        e = np.sign(r.astype(np.int16) - v.astype(np.int16))
        same.append(float(np.mean((np.abs(e.sum(-1)) == 3))))     # all three RGB errors share a sign
        psnrs.append(psnr(torch.from_numpy(r).float() / 127.5 - 1, torch.from_numpy(v).float() / 127.5 - 1))
        mus.append(m)
    vae.train()
    return {
        "flat": {c: [int(round(float(v))) for v in dec[i]] for i, c in enumerate(names)},
        "flat_err": float(np.abs(got - truth).mean()),
        "sat_ratio": float(np.mean([s[0] for s in sats]) / np.mean([s[1] for s in sats])),
        "chroma_ratio": float(np.mean([s[2] for s in sats]) / np.mean([s[3] for s in sats])),
        "psnr": float(np.mean(psnrs)),
        "same_sign": float(np.mean(same)),
        "d_bo": dist("blue", "orange"), "d_bg": dist("blue", "green"), "d_kw": dist("black", "white"),
        "sigma": float(sig.mean()),
        "mu_rms": float(torch.cat([m.flatten() for m in mus]).pow(2).mean().sqrt()),
    }


def strip(vae: WanVAE, held: list[np.ndarray], path: Path, rows: int = 3) -> None:
    """PNG: a row per held-out clip (its last frame) and one of the flat colours; ground truth | reconstruction."""
    from PIL import Image

    vae.eval()
    lines = []
    with torch.no_grad():
        for v in held[:rows]:
            r = to_uint8(vae.decode(vae.encode(to_video(v[None]))[0]))[0]
            lines.append(np.concatenate([v[-1], r[-1]], axis=1))
        w = held[0].shape[2]
        flat = flat_batch()
        r = to_uint8(vae.decode(vae.encode(flat)[0]))[:, -1]                 # (colours 64 64 3)
        g = to_uint8(flat)[:, -1]
        cw = w // len(COLOURS)
        row = np.zeros((64, 2 * w, 3), np.uint8)
        for i in range(len(COLOURS)):
            row[:, i * cw:(i + 1) * cw] = g[i, :, :cw]
            row[:, w + i * cw:w + (i + 1) * cw] = r[i, :, :cw]
        lines.append(row)
    vae.train()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines, axis=0)).save(path, optimize=True)


# ---------------------------------------------------------------------------------------------- train

def train(name: str, data: FrameWindows, held: list[np.ndarray], args) -> list[dict]:
    cfg = apply_variant(name)
    torch.manual_seed(args.seed)
    vae = WanVAE(WAN_TINY)
    if cfg["logvar_bias"] is not None:
        with torch.no_grad():
            vae.quant_conv.bias[vae.config.z_dim:] = cfg["logvar_bias"]
    optim = OptimConfig(lr=cfg["lr"], warmup_steps=100, schedule="cosine", min_lr_ratio=0.1, weight_decay=0.0)
    opt = torch.optim.AdamW(vae.parameters(), lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, 3000, optim))
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out).expanduser() / name
    out.mkdir(parents=True, exist_ok=True)
    log = []
    t0 = time.time()
    with open(out / "log.jsonl", "w") as f:
        for step in range(args.steps + 1):
            if step % args.eval_every == 0:
                m = {"variant": name, "step": step, "seconds": round(time.time() - t0, 1), **measure(vae, held)}
                log.append(m)
                f.write(json.dumps(m) + "\n")
                f.flush()
                fl = m["flat"]
                print(f"{name:>12} {step:4d}  err {m['flat_err']:5.1f}  sat {m['sat_ratio']:.2f}  "
                      f"chroma {m['chroma_ratio']:.2f}  psnr {m['psnr']:5.2f}  same {m['same_sign']:.2f}  "
                      f"d_bo {m['d_bo']:6.2f} d_bg {m['d_bg']:6.2f} d_kw {m['d_kw']:6.2f}  "
                      f"sigma {m['sigma']:.3f} mu_rms {m['mu_rms']:.3f}  blue {fl['blue']} orange {fl['orange']} "
                      f"green {fl['green']}", flush=True)
            if step == args.steps:
                break
            x = to_video(data.draw(rng, 2, 9, (64, 64)))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg["bf16"]):
                loss, _ = cfg["loss_fn"](vae, x, cfg["loss"], gen)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
    torch.save(vae.state_dict(), out / "model.pt")
    if args.strip:
        strip(vae, held, out / "strip.png")
    apply_variant("base")
    return log


def pooled_ycc(clip: np.ndarray) -> np.ndarray:
    """A 9-frame uint8 clip -> its (3 latents, h/8, w/8, 3) Y, Cb, Cr: frames 0 | 1-4 | 5-8 averaged, 8x area-pooled."""
    import cv2

    h, w = clip.shape[1:3]
    out = []
    for group in (clip[:1], clip[1:5], clip[5:9]):
        m = cv2.resize(group.astype(np.float32).mean(0), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
        out.append(m @ YCC.T)
    return np.stack(out)


YCC = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]], np.float32)


@torch.no_grad()
def probe(vae: WanVAE, fit: list[np.ndarray], test: list[np.ndarray]) -> dict[str, list[float]]:
    """Is colour in the latent? R^2 of a ridge read-out latent mean -> 8x-pooled (Y, Cb, Cr), fitted on ``fit``
    clips and scored on ``test`` clips (9 frames each), and the R^2 of the decoder's own output, pooled the same way."""
    vae.eval()
    feats, targets, decoded = [], [], []
    for clip in fit + test:
        mu, _ = vae.encode(to_video(clip[None]))
        feats.append(mu[0].permute(1, 2, 3, 0).reshape(-1, mu.shape[1]).numpy())
        targets.append(pooled_ycc(clip).reshape(-1, 3))
        decoded.append(pooled_ycc(to_uint8(vae.decode(mu))[0]).reshape(-1, 3))
    vae.train()
    n = len(fit)
    x = [np.c_[np.concatenate(f), np.ones(sum(len(a) for a in f))] for f in (feats[:n], feats[n:])]
    y = [np.concatenate(targets[:n]), np.concatenate(targets[n:])]
    w = np.linalg.solve(x[0].T @ x[0] + 1e-3 * np.eye(x[0].shape[1]), x[0].T @ y[0])

    def r2(pred: np.ndarray, t: np.ndarray) -> list[float]:
        return [round(float(v), 3) for v in 1 - ((pred - t) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0)]

    return {"latent_r2_y_cb_cr": r2(x[1] @ w, y[1]), "decoder_r2_y_cb_cr": r2(np.concatenate(decoded[n:]), y[1])}


def data_stats(data: FrameWindows, held: list[np.ndarray]) -> None:
    """The clips' own colour statistics and two trivial reconstructions of the held-out frames."""
    import cv2

    def score(recs: list[np.ndarray]) -> str:
        p = np.mean([psnr(torch.from_numpy(a).float() / 127.5 - 1, torch.from_numpy(b).float() / 127.5 - 1)
                     for a, b in zip(recs, held)])
        c = np.mean([chroma_spread(a) for a in recs]) / np.mean([chroma_spread(b) for b in held])
        s = np.mean([saturation(a) for a in recs]) / np.mean([saturation(b) for b in held])
        return f"PSNR {p:.2f} dB, chroma ratio {c:.2f}, saturation ratio {s:.2f}"

    rng = np.random.default_rng(0)
    frames = np.stack([c[int(rng.integers(len(c)))] for c in data.train])
    print("training clips (one random frame each):", json.dumps(chroma_stats(frames)))
    print("held-out frames:", json.dumps(chroma_stats(np.concatenate(held))))
    h, w = held[0].shape[1:3]
    print("  true luma, clip-mean chroma:", score([grey_oracle(v) for v in held]))
    print("  clip-mean colour everywhere:", score([np.broadcast_to(v.reshape(-1, 3).mean(0).round().astype(np.uint8),
                                                                   v.shape).copy() for v in held]))
    print("  8x area pool + bicubic:", score([np.stack([np.clip(cv2.resize(cv2.resize(
        f, (w // 8, h // 8), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_CUBIC), 0, 255)
        for f in v]) for v in held]))


def load_saved(name: str, out: Path) -> WanVAE:
    """A variant's saved end-of-run weights (apply_variant(name) first), or a WanVAE directory (the shipped one)."""
    path = Path(name).expanduser()
    if (path / "config.json").exists():
        return WanVAE.from_pretrained(path).float()
    vae = WanVAE(WAN_TINY)
    vae.load_state_dict(torch.load(out / name / "model.pt"))
    return vae


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", default="~/relic-work/ae_train", help="training clips (relic world render --out)")
    p.add_argument("--held", default="~/relic-work/ae_val", help="held-out clips for saturation / PSNR")
    p.add_argument("--out", default="~/relic-work/colour_cause")
    p.add_argument("--variants", default="base", help=f"comma-separated, '+' combines: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-clips", type=int, default=None)
    p.add_argument("--strip", action="store_true", help="write <out>/<variant>/strip.png at the end")
    p.add_argument("--remeasure", action="store_true",
                   help="no training: measure each variant's saved <out>/<variant>/model.pt (a variant may also be "
                        "a WanVAE directory, e.g. weights/stages/vae, measured under the base variant)")
    p.add_argument("--probe", action="store_true", help="with --remeasure: the latent's linear colour read-out "
                   "(fitted on 24 training clips, scored on the held-out ones)")
    p.add_argument("--data-stats", action="store_true", help="print the clips' colour statistics first")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out).expanduser()
    held_clips = FrameWindows(Path(args.held).expanduser(), holdout=0, multiple=8, min_frames=9).train
    held = [c[40:45] for c in held_clips[:4]]            # 5 full frames (224x128) from the middle of 4 clips
    if not args.remeasure or args.data_stats or args.probe:
        data = FrameWindows(Path(args.clips).expanduser(), holdout=0,
                            max_clips=24 if args.remeasure else args.max_clips, multiple=8, min_frames=9)
    if args.data_stats:
        data_stats(data, held)
    for name in args.variants.split(","):
        if not args.remeasure:
            train(name, data, held, args)
            continue
        apply_variant("base" if (Path(name).expanduser() / "config.json").exists() else name)
        vae = load_saved(name, out)
        m = measure(vae, held)
        if args.probe:
            m.update(probe(vae, [c[40:49] for c in data.train[:24]], [c[40:49] for c in held_clips]))
        print(name, json.dumps(m))
        if args.strip:
            strip(vae, held, out / Path(name).name / "strip.png")
        apply_variant("base")


if __name__ == "__main__":
    main()
