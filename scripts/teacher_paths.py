"""Where do a teacher's samples go wrong? Its sampling paths on training windows, with oracles, and a strip.

For one batch of a teacher stage's data (its YAML; ``--seconds`` windows, normalized latents) and one noise:

* ``euler``: the Euler ODE (CFG 1) over ``--steps``, with, at every step, the colour-channel and detail-channel
  x0 error along its own path beside the same σ on the data's noisy latents (``--trace``);
* ``detail-oracle`` / ``colour-oracle``: the same path with the detail (colour) channels replaced at every step
  by the data's noisy latents at that σ — which part of the latent breaks the samples;
* ``renoise-K``: the student's sampler (x0, then fresh noise to the next σ) with K steps.

Per sampler: MSE to the data, variance and roughness (mean squared difference of horizontally adjacent latent
pixels) per channel group. ``--strip`` decodes ground truth, its colour channels alone, the Euler sample (also
with its detail zeroed / the data's detail), the detail oracle, one step and the re-noising samples with the
autoencoder (rows; columns: two windows at the start and three later latents).

    python scripts/teacher_paths.py --teacher weights/stages/teacher_r6 --config configs/tiny/teacher_r6.yaml \\
        --vae weights/stages/vae_pooled --strip paths_strip.jpg
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from relic.runtime.sampling import cfg_sample, euler_sigmas
from relic.training.teacher import teacher_and_windows


def rough(x: torch.Tensor) -> float:
    """Mean squared difference of horizontally adjacent latent pixels (b c f h w), latents 1.."""
    return float(((x[..., 1:] - x[..., :-1]) ** 2)[:, :, 1:].mean())


def group_stats(x: torch.Tensor, x0: torch.Tensor, groups: dict) -> dict:
    return {g: {"mse": float(((x[:, sl] - x0[:, sl]) ** 2)[:, :, 1:].mean()), "var": float(x[:, sl, 1:].var()),
                "rough": rough(x[:, sl])} for g, sl in groups.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher DiT directory")
    p.add_argument("--config", required=True, help="the teacher stage's YAML: its data")
    p.add_argument("--vae", default=None, help="autoencoder directory for --strip")
    p.add_argument("--steps", type=int, default=20, help="Euler steps")
    p.add_argument("--shift", type=float, default=2.0)
    p.add_argument("--renoise", default="4,8,16", help="re-noising step counts, comma-separated")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--split", type=int, default=6, help="colour channels [0, N), detail [N, c)")
    p.add_argument("--batch", type=int, default=10_000, help="the data batch index")
    p.add_argument("--trace", action="store_true", help="print the Euler path's x0 error per step")
    p.add_argument("--strip", default=None, help="write the decoded strip (PNG) here")
    p.add_argument("--json", default=None, help="write the table here")
    args = p.parse_args()
    dit, data = teacher_and_windows(args.teacher, args.config, args.seconds)
    batch = data.batch(args.batch, 0, 1)
    x0 = batch.latents.float()
    c = x0.shape[1]
    colour, detail = slice(0, args.split), slice(args.split, c)
    groups = {"colour": colour, "detail": detail}
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    start = torch.cat([x0[:, :, :1], noise[:, :, 1:]], dim=2)

    def forward(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t[:, 0] = 0.0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            v = dit(x, t, batch.text, batch.text_mask, batch.actions, batch.R, batch.P).float()
        v[:, :, 0] = 0.0
        return v

    def euler(oracle: slice | None = None) -> torch.Tensor:
        x = start.clone()
        sig = euler_sigmas(args.steps, args.shift)
        for s, sn in zip(sig[:-1], sig[1:]):
            noisy = (1 - s) * x0 + s * noise
            if oracle is not None:
                x[:, oracle, 1:] = noisy[:, oracle, 1:]
            t = torch.full((x.shape[0], x.shape[2]), s * 1000.0)
            v = forward(x, t)
            if args.trace and oracle is None:
                forced = torch.cat([x0[:, :, :1], noisy[:, :, 1:]], dim=2)
                own, frc = (x - s * v - x0) ** 2, (forced - s * forward(forced, t) - x0) ** 2
                print(f"σ {s:.3f}: x0 error on its own path colour {float(own[:, colour, 1:].mean()):.3f} "
                      f"detail {float(own[:, detail, 1:].mean()):.3f} | on the data's noisy latents colour "
                      f"{float(frc[:, colour, 1:].mean()):.3f} detail {float(frc[:, detail, 1:].mean()):.3f}")
            x = x + (sn - s) * v
        return x

    samples = {"euler": euler(), "detail-oracle": euler(detail), "colour-oracle": euler(colour)}
    for k in [int(n) for n in args.renoise.split(",") if n.strip()]:
        out, _ = cfg_sample(lambda x, t, cond: forward(x, t), start.clone(), euler_sigmas(k, args.shift), 1.0, [],
                           "renoise", torch.Generator().manual_seed(1))
        samples[f"renoise-{k}"] = out
    table = {"data": group_stats(x0, x0, groups), "copy start": group_stats(x0[:, :, :1].expand_as(x0), x0, groups)}
    table.update({name: group_stats(x, x0, groups) for name, x in samples.items()})
    print("| sampler | " + " | ".join(f"{g} MSE | {g} var | {g} rough" for g in groups) + " |")
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[g]['mse']:.3f} | {row[g]['var']:.3f} | {row[g]['rough']:.3f}"
                                          for g in groups) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    if args.strip:
        write_strip(args, x0, samples, start, forward, colour, detail)


def write_strip(args, x0, samples, start, forward, colour, detail) -> None:
    import cv2

    from relic.models.pooled_vae import PooledVAE

    if not args.vae:
        raise SystemExit("--strip needs --vae")
    vae = PooledVAE.from_pretrained(args.vae).eval()
    t = torch.full((x0.shape[0], x0.shape[2]), 1000.0)
    one = start - forward(start, t)
    e = samples["euler"]
    rows = {"ground truth": x0, "its colour channels": torch.cat([x0[:, colour], 0 * x0[:, detail]], 1),
            "euler": e, "euler, detail zeroed": torch.cat([e[:, colour], 0 * e[:, detail]], 1),
            "euler + data's detail": torch.cat([e[:, colour], x0[:, detail]], 1),
            "detail oracle": samples["detail-oracle"], "one step": one,
            **{k: v for k, v in samples.items() if k.startswith("renoise")}}
    f = x0.shape[2]
    lat = [0, f // 4, f // 2, f - 1]
    img = []
    with torch.no_grad():
        for name, z in rows.items():
            frames = vae.decode(z[:2].float())
            tiles = []
            for b in range(2):
                for k in lat:
                    fr = frames[b, :, 0 if k == 0 else 4 * k]
                    tiles.append(((fr.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8))
                tiles.append(np.full((tiles[-1].shape[0], 6, 3), 255, np.uint8))
            row = np.ascontiguousarray(np.concatenate(tiles[:-1], 1))
            cv2.putText(row, name, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 2, cv2.LINE_AA)
            cv2.putText(row, name, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
            img.append(row)
    cv2.imwrite(args.strip, cv2.cvtColor(np.concatenate(img, 0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.strip}")


if __name__ == "__main__":
    main()
