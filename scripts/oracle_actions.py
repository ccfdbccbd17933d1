"""The autoencoder oracle of the actions suite: how well could *any* student follow the actions, given its
model's latent space and decoder?

    .venv/bin/python scripts/oracle_actions.py --out docs/eval/relic-tiny/oracle_actions.json

For every held-out scene and every script of :func:`relic.eval.suites.actions.battery` (the long mixed path
too unless ``--skip-long``), the ground-truth render goes through the model's VAE encoder and back through its
decoders (the tiny decoder the stream uses and the full VAE decoder): a "student" whose latents are perfect.
The same pose estimator and scoring as ``relic eval --suite actions`` (:func:`relic.eval.suites.actions.score_script`)
then give its RPE and direction accuracy next to the noise floor of the ground-truth renders. If this oracle
misses a target, no student in this latent space can meet it as measured: the autoencoder is the limit.
Writes one JSON file (atomically) and prints a summary line per row.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from relic.eval.direction import direction_accuracy
from relic.eval.noise_floor import _summarize
from relic.eval.suites.actions import base_motion, score_script, battery
from relic.eval.suites.common import ModelSpec, World, WorldConfig, open_session
from relic.fileio import atomic_path
from relic.training.frames import to_uint8, to_video

ROWS = ("ground_truth", "oracle_tiny_decoder", "oracle_vae_decoder")


@torch.no_grad()
def oracle_frames(session, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (T h w 3) -> the same video through the session's VAE encoder (posterior mean) and back through
    its tiny decoder and its VAE decoder: two uint8 (T h w 3)."""
    z, _ = session.vae.encode(to_video(gt[None]))
    tiny = to_uint8(session.tiny(z))[0] if session.tiny is not None else None
    return tiny, to_uint8(session.vae.decode(z))[0]


def run(model: str, seeds: list[int], quick: bool = False, skip_long: bool = False) -> dict:
    session = open_session(ModelSpec.parse(model))
    world = World(WorldConfig(width=session.cfg.width, height=session.cfg.height))
    rows: dict[str, list[dict]] = {k: [] for k in ROWS}
    try:
        for seed in seeds:
            for name, actions, gamma in battery(quick=quick):
                if skip_long and name == "long_mixed":
                    continue
                poses = world.start_pose(seed, actions, gamma)
                if poses is None:
                    continue
                R, P = poses
                gt = world.render(R, P)
                tiny, vae = oracle_frames(session, gt)
                for key, frames in zip(ROWS, (gt, tiny, vae)):
                    if frames is None:
                        continue
                    row, _ = score_script(name, actions, gamma, R, P, frames, world.K)
                    rows[key].append({"seed": seed, "script": name, "gamma": gamma, **row})
    finally:
        world.release()
    out = {"model": model, "seeds": seeds, "rows": {}}
    for key, rs in rows.items():
        if not rs:
            continue
        dirs = direction_accuracy([(base_motion(r["script"]), r["direction_match"]) for r in rs
                                   if base_motion(r["script"]) is not None])
        out["rows"][key] = {"summary": _summarize(rs), "direction_accuracy": dirs, "results": rs}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="weights/relic-tiny", help="model directory (default weights/relic-tiny)")
    p.add_argument("--seeds", type=int, nargs="+", default=[2**32 + i for i in range(4)],
                   help="held-out world seeds (default 2**32 .. 2**32+3, as relic eval)")
    p.add_argument("--quick", action="store_true", help="the suite's two-script quick battery")
    p.add_argument("--skip-long", action="store_true", help="leave out the 161-frame long mixed path")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args()
    if any(s < 2**32 for s in args.seeds):
        p.error("seeds must be >= 2**32 (held-out scenes)")
    res = run(args.model, args.seeds, args.quick, args.skip_long)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(res, indent=1, default=float))
    for key, r in res["rows"].items():
        s, d = r["summary"], r["direction_accuracy"]
        met = sum(v["accuracy"] >= 0.9 for v in d.values())
        print(f"{key}: RPE-rot {s['rpe_rot_deg']:.3f} deg, RPE-t {s['rpe_trans']:.3f}, "
              f"direction >= 90 % for {met}/{len(d)} motions")


if __name__ == "__main__":
    main()
