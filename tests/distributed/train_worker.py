"""A tiny DiT flow-matching stage on synthetic data, run by the real trainer (:func:`make_trainer`).

``python train_worker.py OUT STEPS [SP_SIZE] [--resume]`` in one process, or under torchrun with 2 gloo
ranks (FSDP2 data parallel, or Ulysses with SP_SIZE=2). The global batch is the same in every layout:
sample k of step s is drawn from a generator seeded by (s, k), and each data-parallel rank takes its slice
(:func:`relic.training.distributed.data_shard`). Launched by test_fsdp.py.
"""

import os
import sys
from pathlib import Path

import torch

from relic.config import DiTConfig
from relic.models.dit import DiT
from relic.training.config import LoopConfig, OptimConfig
from relic.training.distributed import DistributedConfig, data_shard, exit_process, make_trainer
from relic.training.loop import Task

GLOBAL_BATCH = 4


def tiny_dit() -> DiT:
    torch.manual_seed(0)
    cfg = DiTConfig(dim=32, ffn_dim=48, freq_dim=16, text_dim=8, num_heads=2, num_layers=2,
                    action_hidden=8, pose_hidden=8)
    model = DiT(cfg)
    with torch.no_grad():
        for p in model.action_encoder.proj.parameters():
            p.normal_(0, 0.1)
    return model


def sample(step: int, k: int, cfg: DiTConfig) -> dict:
    g = torch.Generator().manual_seed(1000 * step + k)
    return dict(x0=torch.randn(cfg.in_channels, 2, 4, 4, generator=g), noise=torch.randn(cfg.in_channels, 2, 4, 4, generator=g),
                sigma=torch.rand((), generator=g), text=torch.randn(3, cfg.text_dim, generator=g),
                actions=torch.rand(5, 13, generator=g))


class SyntheticTask(Task):
    name = "synthetic"

    def build(self, trainer) -> None:
        self.dit = tiny_dit()
        trainer.add_unit("dit", self.dit, OptimConfig(lr=3e-3, warmup_steps=2, schedule="constant", grad_clip=1.0))

    def train_step(self, trainer, step: int) -> dict[str, float]:
        rank, world = data_shard()
        b = GLOBAL_BATCH // world
        items = [sample(step, rank * b + j, self.dit.cfg) for j in range(b)]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}

        def loss_fn(micro: int):
            s = batch["sigma"].view(-1, 1, 1, 1, 1)
            xt = (1 - s) * batch["x0"] + s * batch["noise"]
            t = (batch["sigma"] * 1000).view(-1, 1).expand(-1, 2)
            v = self.dit(xt, t, batch["text"], None, batch["actions"])
            return ((v - (batch["noise"] - batch["x0"])) ** 2).mean(), {}

        return trainer.standard_step(loss_fn)

    def export(self, trainer, directory: Path) -> None:
        trainer.units["dit"].weights(ema=True).save_pretrained(directory)
        trainer.units["dit"].module.save_pretrained(directory / "live")


def main():
    out, steps = sys.argv[1], int(sys.argv[2])
    sp_size = int(sys.argv[3]) if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else 1
    loop = LoopConfig(steps=steps, precision="fp32", ema_decay=0.9, log_every=1, ckpt_every=2, keep_last=3,
                      threads=1, progress=False)
    trainer = make_trainer(SyntheticTask(), out, loop, {"stage": "synthetic"}, DistributedConfig(sp_size=sp_size))
    trainer.fit(resume="--resume" in sys.argv)
    print(f"rank {trainer.env.rank}/{trainer.env.world_size} done", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
    exit_process(0)
