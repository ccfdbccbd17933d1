"""Does a teacher use its start latent? Its x0 error by noise level, beside trivial baselines.

For batches of a teacher stage's data (its YAML or a run's config.json) and fixed noise, at each σ:

* ``teacher``: MSE of the teacher's x̂0 = x_σ − σ v̂ against the clean latents (latents 1.., normalized units);
* ``swapped``: the same with every sample's start latent replaced by another sample's (rolled in the batch):
  a teacher that ignores the start latent scores the same as ``teacher``;
* ``copy``: the start latent repeated (the frozen-frame baseline in latent space);
* ``mean``: predicting zeros (the per-channel mean of normalized latents).

    python scripts/teacher_by_sigma.py --teacher runs/tiny/teacher_r6/final --config configs/tiny/teacher_r6.yaml

``--split 6`` also reports channels 0-5 and 6-15 apart (the colour-pooled autoencoder's pooled colour and
learned detail channels).
"""

from __future__ import annotations

import argparse
import json

import torch

from relic.models.dit import DiT
from relic.runtime.sampling import add_noise
from relic.training.teacher import teacher_and_windows

SIGMAS = (0.1, 0.3, 0.5, 0.7, 0.9, 0.98)


def x0_error(dit: DiT, x0: torch.Tensor, first: torch.Tensor, sigma: float, noise: torch.Tensor, batch
             ) -> torch.Tensor:
    """(c,) per-channel MSE (over latents 1..) of the teacher's x̂0 at σ, with ``first`` (b c 1 h w) as the clean
    start latent."""
    b, f = x0.shape[0], x0.shape[2]
    xt = torch.cat([first, add_noise(x0, noise, torch.tensor(sigma))[:, :, 1:]], dim=2)
    t = torch.full((b, f), sigma * 1000.0)
    t[:, 0] = 0.0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        v = dit(xt, t, batch.text, batch.text_mask, batch.actions, batch.R, batch.P).float()
    x0_hat = xt.float() - sigma * v
    return per_channel((x0_hat - x0) ** 2)


def per_channel(sq: torch.Tensor) -> torch.Tensor:
    """(b c f h w) squared errors -> (c,) means over latents 1.. (latent 0 is the given start)."""
    return sq[:, :, 1:].mean(dim=(0, 2, 3, 4))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher DiT directory")
    p.add_argument("--config", required=True, help="the teacher stage's YAML (or a run's config.json): its data")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0, help="sample duration")
    p.add_argument("--split", type=int, default=None, help="also report channels [0, N) and [N, c) apart")
    p.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args()
    dit, data = teacher_and_windows(args.teacher, args.config, args.seconds)
    g = torch.Generator().manual_seed(0)
    keys = ("teacher", "swapped", "copy", "mean")
    rows = {s: {k: 0.0 for k in keys} for s in SIGMAS}
    for i in range(args.batches):
        batch = data.batch(10_000 + i, 0, 1)
        x0 = batch.latents.float()
        noise = torch.randn(x0.shape, generator=g)
        first = x0[:, :, :1]
        for s in SIGMAS:
            r = rows[s]
            r["teacher"] += x0_error(dit, x0, first, s, noise, batch) / args.batches
            r["swapped"] += x0_error(dit, x0, first.roll(1, dims=0), s, noise, batch) / args.batches
            r["copy"] += per_channel((first - x0) ** 2) / args.batches
            r["mean"] += per_channel(x0 ** 2) / args.batches
    c = x0.shape[1]
    groups = {"all": slice(0, c)}
    if args.split:
        groups.update({f"0-{args.split - 1}": slice(0, args.split), f"{args.split}-{c - 1}": slice(args.split, c)})
    table = {}
    for name, sl in groups.items():
        print(f"\nchannels {name}\n| σ | teacher | start swapped | copy start | mean |\n|---|---|---|---|---|")
        for s, r in rows.items():
            v = {k: float(r[k][sl].mean()) for k in keys}
            table.setdefault(name, {})[str(s)] = v
            print(f"| {s:g} | {v['teacher']:.3f} | {v['swapped']:.3f} | {v['copy']:.3f} | {v['mean']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
