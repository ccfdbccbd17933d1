"""How much does one axis of the command change a teacher's x0 prediction, at each σ?

On the windows of ``--batches`` batches that move along each axis (its stage YAML's data, ``--seconds`` long):
the teacher predicts x0 from the same noise with the window's command and with that axis mirrored (dolly in ↔
out, ...; poses re-integrated). Printed per axis and σ: the RMS difference of the two predictions at the last
latent, the RMS error of the prediction against the truth, and the truth's own change over the window (last
latent − start latent). A teacher that *makes* the motion moves its prediction by a sizeable part of the
truth's change at σ = 1, where a sample's layout is decided. ``--strip``: a PNG of one window of the first axis,
rows σ, columns ground truth | prediction with the command | with the axis mirrored (last latent, decoded).

    python scripts/command_x0.py --teacher weights/stages/teacher_r7 --config configs/tiny/teacher_r6.yaml
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from relic.models.dit import DiT
from relic.runtime.sampling import add_noise, x0_from_velocity
from relic.training.probe import axis_motion, counterfactual, rows
from relic.training.teacher import add_window_args, window_batches


def x0_prediction(dit, batch, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    """The teacher's x0 (b c f h w) for the batch noised to ``sigma`` (latent 0 clean), bf16 autocast."""
    x0 = batch.latents
    xt = torch.cat([x0[:, :, :1], add_noise(x0, noise, sigma)[:, :, 1:]], 2)
    t = torch.full(x0.shape[::2][:2], sigma * 1000.0)
    t[:, 0] = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        v = dit(xt, t, batch.text, batch.text_mask, batch.actions, batch.R, batch.P)
    return x0_from_velocity(xt, v.float(), sigma)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True)
    add_window_args(p)
    p.add_argument("--axes", default="dolly,pan,truck,roll")
    p.add_argument("--sigmas", default="1.0,0.8,0.5")
    p.add_argument("--strip", default=None, help="write the strip PNG here (needs --vae)")
    p.add_argument("--vae", default="weights/stages/vae_pooled")
    args = p.parse_args()
    dit = DiT.from_pretrained(args.teacher).eval()
    batches = window_batches(args)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    g = torch.Generator().manual_seed(0)
    tiles: list[list[torch.Tensor]] = []
    print("| axis (windows) | σ | command changes x0 by | x0 error | the truth's own change |")
    print("|---|---|---|---|---|")
    for axis in args.axes.split(","):
        acc = {s: [] for s in sigmas}
        for b in batches:
            m = axis_motion(b, axis) >= args.min_motion
            if not m.any():
                continue
            true, mirror = rows(b, m), rows(counterfactual(b, f"mirror:{axis}"), m)
            for s in sigmas:
                noise = torch.randn(true.latents.shape, generator=g)
                a, c = x0_prediction(dit, true, s, noise), x0_prediction(dit, mirror, s, noise)
                gt = true.latents
                rms = lambda x: x[:, :, -1].pow(2).mean((1, 2, 3)).sqrt()       # noqa: E731  (n,)
                acc[s].append(torch.stack([rms(a - c), rms(a - gt), rms(gt - gt[:, :, :1])], 1))
                if args.strip and len(tiles) < len(sigmas) and axis == args.axes.split(",")[0]:
                    tiles.append([z[:1, :, -1:].float() for z in (gt, a, c)])
        for s in sigmas:
            if acc[s]:
                v = torch.cat(acc[s])
                d, e, ch = v.mean(0).tolist()
                print(f"| {axis} ({len(v)}) | {s:g} | {d:.3f} | {e:.3f} | {ch:.3f} |")
    if args.strip and tiles:
        from PIL import Image

        from relic.models.autoencoder import load_vae

        vae = load_vae(args.vae).eval()
        with torch.no_grad():
            img = np.concatenate([np.concatenate([((vae.decode(z)[0, :, -1].permute(1, 2, 0).clamp(-1, 1) + 1)
                                                   * 127.5).byte().numpy() for z in row], 1) for row in tiles], 0)
        Image.fromarray(img).save(args.strip)
        print(f"strip (rows σ {args.sigmas}; ground truth | with the command | mirrored) -> {args.strip}")


if __name__ == "__main__":
    main()
