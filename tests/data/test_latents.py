"""Latent cache: `relic data encode` with a tiny random-weight VAE, resumability, and latent-mode samples."""

import os

import numpy as np
import pytest
import torch

from relic.cli import main
from relic.config import VAEConfig
from relic.data.clips import list_clips
from relic.data.dataset import ClipDataset, DatasetConfig
from relic.data.latents import FORMAT, LatentFile, _to_video, encode_frames, is_done, vae_id
from relic.data.start_image import preprocess_image
from relic.errors import UserError
from relic.models.vae import WanVAE

TINY = VAEConfig(z_dim=4, base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run fastest on one thread, above all when other tests share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("vae")
    WanVAE(TINY).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def cache(clip_root, vae_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    assert main(["data", "encode", str(clip_root), "--vae", str(vae_dir), "--out", str(out), "--chunk", "3"]) == 0
    return out


def test_chunked_encode_equals_one_call(clip_root, vae_dir):
    vae = WanVAE.from_pretrained(vae_dir).eval()
    frames = list_clips(clip_root)[0].frames(21)
    with torch.no_grad():
        full = vae.encode(_to_video(frames))[0][0]
    for chunk in (1, 3):  # 1 + 4 + 4 + 4 + 4 + 4 and 1 + 12 + 8 frames
        torch.testing.assert_close(encode_frames(vae, frames, chunk), full, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_encode_writes_one_file_per_clip_and_resumes(clip_root, vae_dir, cache, capsys, tmp_path):
    files = sorted(p.name for p in cache.glob("*.safetensors"))
    assert files == ["clip_000.safetensors", "clip_001.safetensors", "clip_002.safetensors"]
    lf = LatentFile(cache / "clip_001.safetensors")
    assert lf.num_frames == 57 and lf.num_latents == 15 and lf.has_reversed
    mtimes = {p: p.stat().st_mtime_ns for p in cache.glob("*.safetensors")}
    capsys.readouterr()
    assert main(["data", "encode", str(clip_root), "--vae", str(vae_dir), "--out", str(cache)]) == 0
    assert "encoded 0 clip(s), skipped 3" in capsys.readouterr().out
    assert mtimes == {p: p.stat().st_mtime_ns for p in cache.glob("*.safetensors")}
    # an interrupted run leaves no partial file: only finished clips exist, and a rerun completes the rest
    part = tmp_path / "part"
    part.mkdir()
    for name in ("clip_000", "clip_001"):
        os.link(cache / f"{name}.safetensors", part / f"{name}.safetensors")
    assert main(["data", "encode", str(clip_root), "--vae", str(vae_dir), "--out", str(part)]) == 0
    assert "encoded 1 clip(s), skipped 2" in capsys.readouterr().out
    assert not [p for p in part.iterdir() if p.name.startswith(".")]


def test_encode_bad_input(tmp_path, clip_root, capsys):
    assert main(["data", "encode", str(clip_root), "--vae", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "not a VAE directory" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match="not in the latent cache"):
        ClipDataset(list_clips(clip_root), DatasetConfig(seconds=2.0, latents=str(tmp_path)))


@pytest.mark.slow
def test_latent_samples_match_the_encoded_frames(clip_root, vae_dir, cache):
    """Latent i of a sample must encode the sample's frames 4i-3..4i: checked against direct VAE encodes,
    with the latent index derived independently from frame_index."""
    clips = list_clips(clip_root)
    vae = WanVAE.from_pretrained(vae_dir).eval()
    ds = ClipDataset(clips, DatasetConfig(seconds=2.0, latents=str(cache), palindrome_rate=0.5, samples_per_epoch=8))
    direct = {}
    for clip in clips:
        K = (len(clip) - 1) // 4
        frames = clip.frames(1 + 4 * K)
        with torch.no_grad():
            direct[clip.name] = (K, frames, vae.encode(_to_video(frames))[0][0],
                                 vae.encode(_to_video(frames[::-1].copy()))[0][0])
    seen_pal = seen_plain = False
    for i in range(len(ds)):
        s = ds[i]
        K, frames, fwd, rev = direct[s["clip"]]
        idx = s["frame_index"].numpy()
        n_lat = s["latents"].shape[1]
        assert s["latents"].shape == (4, 1 + (ds.num_frames - 1) // 4, 8, 12)
        assert idx[0] % 4 == 0
        np.testing.assert_array_equal(s["first_frame"].numpy(), frames[idx[0]])
        # latent 0: the start frame encoded alone, as StreamingSession.start encodes a start image
        with torch.no_grad():
            single = vae.encode(preprocess_image(frames[idx[0]], *frames.shape[1:3]))[0][0, :, 0]
        torch.testing.assert_close(s["latents"][:, 0], single, atol=1e-5, rtol=1e-4)
        if idx[0] > 0:                                # ... which is not the clip's video latent there
            assert (s["latents"][:, 0] - fwd[:, idx[0] // 4]).abs().max() > 1e-3
        for li in range(1, n_lat):
            anchor = idx[4 * li]                      # the last frame of the group, in sample time
            if idx[4 * li - 1] < anchor:              # group runs forward in time: the clip's latent
                expect = fwd[:, anchor // 4]
                assert all(idx[4 * li - m] == anchor - m for m in range(4))
            else:                                     # group runs backward: the reversed clip's latent
                expect = rev[:, (4 * K - anchor) // 4]
                assert all(idx[4 * li - m] == anchor + m for m in range(4))
            torch.testing.assert_close(s["latents"][:, li], expect, atol=1e-5, rtol=1e-4)
        seen_pal |= s["pivot"] > 0
        seen_plain |= s["pivot"] == 0
    assert seen_pal and seen_plain


def test_bf16_encode_is_the_autocast_encode(clip_root, vae_dir, tmp_path):
    """--precision bf16 stores what the VAE gives under bf16 autocast (the run-time start-frame arithmetic):
    equal to an explicit autocast encode, different from fp32 only at bf16 rounding level."""
    out = tmp_path / "bf16"
    one = tmp_path / "one"
    one.mkdir()
    os.symlink(list_clips(clip_root)[0].path, one / "clip_000")
    assert main(["data", "encode", str(one), "--vae", str(vae_dir), "--out", str(out), "--no-reverse",
                 "--precision", "bf16"]) == 0
    got = LatentFile(out / "clip_000.safetensors").latents(np.arange(5))
    vae = WanVAE.from_pretrained(vae_dir).eval()
    frames = list_clips(one)[0].frames()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = encode_frames(vae, frames)
    with torch.no_grad():
        fp32 = encode_frames(vae, frames)
    torch.testing.assert_close(got.float(), want[:, :5].float())
    assert 0 < (got.float() - fp32[:, :5]).abs().max() < 0.05 * fp32.abs().max()


def test_first_latents_are_the_runtime_start_latents(clip_root, vae_dir, tmp_path):
    """The cache's first_latents[j] is bitwise what StreamingSession.start feeds the DiT for anchor frame 4j (fp32,
    float32 storage): the same function (relic.data.start_image.encode_start_image), the same preprocessing."""
    import dataclasses

    from relic.config import DiTConfig, get_preset
    from relic.models.dit import DiT
    from relic.runtime.stream import StreamingSession

    one = tmp_path / "one"
    one.mkdir()
    os.symlink(list_clips(clip_root)[2].path, one / "clip_002")
    out = tmp_path / "cache"
    assert main(["data", "encode", str(one), "--vae", str(vae_dir), "--out", str(out), "--no-reverse"]) == 0
    lf = LatentFile(out / "clip_002.safetensors")
    vae = WanVAE.from_pretrained(vae_dir).eval()
    frames = list_clips(one)[0].frames()
    dit_cfg = DiTConfig(dim=32, ffn_dim=64, text_dim=8, num_heads=2, num_layers=1, freq_dim=32, in_channels=4,
                        out_channels=4, action_hidden=16, pose_hidden=16)
    cfg = dataclasses.replace(get_preset("relic-tiny"), height=frames.shape[1], width=frames.shape[2], vae=TINY,
                              dit=dit_cfg)

    class Text:
        dim = 8

        def encode(self, prompts):
            return torch.zeros(len(prompts), 2, self.dim), torch.ones(len(prompts), 2, dtype=torch.bool)

    torch.manual_seed(0)
    session = StreamingSession(cfg, DiT(dit_cfg), vae, None, text_encoder=Text(), decoder="vae", precision="fp32")
    seen = []
    write_first = session.student.write_first

    def spy(cache, z0, text):                      # what the runtime hands the DiT as the first latent
        seen.append(z0.detach().clone())
        return write_first(cache, z0, text)

    session.student.write_first = spy
    for j in (0, 3, lf.num_latents - 1):
        session.start(frames[4 * j], "a prompt")
        assert torch.equal(lf.first_latent(j), seen[-1][0].cpu()), j
    assert not torch.equal(lf.first_latent(3), lf.latents(np.arange(3, 4)))    # not the video latent


def test_old_cache_format_is_a_clear_error_and_is_re_encoded(clip_root, vae_dir, tmp_path, capsys):
    from safetensors.torch import save_file

    old = tmp_path / "old"
    old.mkdir()
    meta = {"format": "relic-latents-1", "clip": "clip_000", "num_frames": "5", "fps": "16.0",
            "vae_id": vae_id(vae_dir), "temporal_factor": "4", "spatial_factor": "8"}
    save_file({"latents": torch.zeros(4, 2, 8, 12)}, str(old / "clip_000.safetensors"), metadata=meta)
    assert FORMAT != "relic-latents-1" and not is_done(old / "clip_000.safetensors", vae_id(vae_dir))
    with pytest.raises(UserError, match="relic-latents-1 is out of date.*relic data encode") as e:
        LatentFile(old / "clip_000.safetensors")
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(UserError, match="out of date"):
        ClipDataset(list_clips(clip_root)[:1], DatasetConfig(seconds=0.3, latents=str(old)))


def test_extra_sources_mix_in_with_their_own_latent_cache(clip_root, cache, tmp_path):
    """data.extra: a second (clips, latents) source is drawn from through its own cache. The extra clip is named
    ``other_001`` and only the extra cache holds that name, so reading the main cache for it would fail; its
    samples must equal the main dataset's samples of the same clip (clip_001) at the same start and pivot."""
    import dataclasses
    import shutil

    from relic.training.batches import LatentDataConfig, LatentSamples, MixedDataset

    clips2, cache2 = tmp_path / "clips2", tmp_path / "cache2"
    clips2.mkdir()
    cache2.mkdir()
    (clips2 / "other_001").symlink_to(clip_root / "clip_001")
    shutil.copy(cache / "clip_001.safetensors", cache2 / "other_001.safetensors")
    base = LatentDataConfig(clips=str(clip_root), latents=str(cache), seconds=2.0, palindrome_rate=0.5)
    single = LatentSamples(base, None).dataset(2.0)
    mixed = LatentSamples(dataclasses.replace(base, extra=[{"clips": str(clips2), "latents": str(cache2)}]),
                          None).dataset(2.0)
    assert isinstance(mixed, MixedDataset) and len(mixed) == len(single) + len(mixed.parts[1])
    for epoch in (0, 3):
        single.set_epoch(epoch)
        mixed.set_epoch(epoch)
        for g in range(len(single)):                 # the main source keeps its own draws, bit for bit
            a, b = single[g], mixed[g]
            assert a["clip"] == b["clip"] and torch.equal(a["latents"], b["latents"])
            assert torch.equal(a["frame_index"], b["frame_index"])
        ci = [c.name for c in single.clips].index("clip_001")
        for g in range(len(single), len(mixed)):
            s = mixed[g]
            ref = single.sample(ci, int(s["frame_index"][0]), s["pivot"])
            assert s["clip"] == "other_001" and torch.equal(s["frame_index"], ref["frame_index"])
            assert torch.equal(s["latents"], ref["latents"]) and torch.equal(s["actions"], ref["actions"])
    with pytest.raises(UserError, match=r"data.extra\[0\]"):
        LatentSamples(dataclasses.replace(base, extra=[{"clips": str(clips2)}]), None)
    with pytest.raises(UserError, match="latent cache not found"):
        LatentSamples(dataclasses.replace(base, extra=[{"clips": str(clips2), "latents": str(tmp_path / "no")}]),
                      None)
