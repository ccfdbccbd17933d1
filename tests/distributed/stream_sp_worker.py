"""Run under torchrun (2 gloo ranks): a StreamingSession with a sequence-parallel group gives the frames of
one process, with each rank caching half of the heads (compressed memory included).

The stream is long enough for latents to leave the rolling window and enter the pooled memory. Checked for
fp32 and fp8 KV storage. Exits non-zero on a mismatch. Launched by test_stream_sp.py.
"""

import dataclasses
import os

import numpy as np
import torch
import torch.distributed as dist

from relic.camera import parse_action_script
from relic.config import DiTConfig, MemoryConfig, RelicConfig, SamplerConfig, TinyDecoderConfig, VAEConfig
from relic.models.autoencoder import build_vae
from relic.models.dit import DiT
from relic.models.sequence_parallel import SequenceParallel
from relic.models.tiny_decoder import TinyDecoder
from relic.runtime.stream import StreamingSession
from relic.training.distributed import exit_process


class FakeText:
    dim = 16

    def encode(self, prompts):
        g = torch.Generator().manual_seed(len(prompts[0]))
        return torch.randn(len(prompts), 4, self.dim, generator=g), torch.ones(len(prompts), 4, dtype=torch.bool)


def models(cfg: RelicConfig):
    torch.manual_seed(0)
    dit = DiT(cfg.dit).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return dit, build_vae(cfg.vae).eval(), TinyDecoder(cfg.tiny_decoder).eval()


def run(cfg: RelicConfig, sp) -> tuple[list[np.ndarray], dict]:
    dit, vae, tiny = models(cfg)
    s = StreamingSession(cfg, dit, vae, tiny, text_encoder=FakeText(), precision="fp32", sp=sp)
    img = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    frames = [s.start(img, "a courtyard", seed=3)]
    for tok in ("w*4", "left*4", "d*4", "w+up*4", "a*4", "s*4"):
        frames.append(s.step(parse_action_script(tok)))
    return frames, s.state["memory"]


def main():
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    sp = SequenceParallel()
    base = RelicConfig(
        name="sp-test", height=32, width=48, frames_per_block=1, text_len=4,
        dit=DiTConfig(dim=32, ffn_dim=64, text_dim=16, num_heads=2, num_layers=2, freq_dim=32,
                      action_hidden=16, pose_hidden=16),
        vae=VAEConfig(base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1), tiny_decoder=TinyDecoderConfig(channels=8),
        sampler=SamplerConfig(timesteps=(1000.0, 500.0)))
    for dtype in ("fp32", "fp8"):
        cfg = dataclasses.replace(base, memory=MemoryConfig(window=2, schedule=(1, 2), dtype=dtype))
        ref, ref_mem = run(cfg, None)
        out, mem = run(cfg, sp)
        assert ref_mem["memory_latents"] >= 3, ref_mem           # pooled memory is in play
        assert np.concatenate(ref[1:]).std() > 5                 # the frames are not flat
        assert mem["tokens"] == ref_mem["tokens"]
        assert mem["bytes"] < 0.6 * ref_mem["bytes"], (mem, ref_mem)   # this rank's half of the heads
        diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(out, ref))
        assert diff == 0, f"{dtype}: frames differ by up to {diff} levels"
        print(f"rank {dist.get_rank()} {dtype}: {sum(len(f) for f in out)} frames identical, KV "
              f"{mem['bytes']} vs {ref_mem['bytes']} bytes OK", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
    exit_process(0)
