"""End to end on a rendered dataset: `relic data filter`, `relic data encode`, then the dataset reads both."""

import json

import pytest
import torch

from relic.cli import main
from relic.config import VAEConfig
from relic.data.clips import list_clips
from relic.data.dataset import ClipDataset, DatasetConfig, load_segments
from relic.models.vae import WanVAE

world = pytest.importorskip("relic.world")


@pytest.mark.slow
def test_filter_encode_and_load_a_rendered_dataset(tmp_path, capsys):
    data = tmp_path / "data"
    world.write_clip(data / "clip_000000", seed=0, seconds=6, size=(64, 48))
    world.write_clip(data / "clip_000001", seed=1, seconds=6, size=(64, 48), defects=("frozen",))
    report, verdicts = tmp_path / "report.md", tmp_path / "verdicts.json"
    assert main(["data", "filter", str(data), "--report", str(report), "--json", str(verdicts)]) == 0
    text = report.read_text()
    assert "| clip_000000 | 96 | kept | 0–95 | — |" in text
    row = next(line for line in text.splitlines() if line.startswith("| clip_000001 "))
    assert "**frozen**" in row
    frozen = json.loads((data / "clip_000001" / "meta.json").read_text())["defects"][0]["frames"]
    segs = load_segments(verdicts)
    assert all(e <= frozen[0] + 1 or s > frozen[1] for s, e in segs["clip_000001"])

    torch.manual_seed(0)
    WanVAE(VAEConfig(z_dim=4, base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1)).save_pretrained(tmp_path / "vae")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["data", "encode", str(data), "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "cache")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "encoded 2 clip(s)" in capsys.readouterr().out
    ds = ClipDataset(list_clips(data), DatasetConfig(seconds=2.0, latents=str(tmp_path / "cache"), samples_per_epoch=4),
                     segments=segs)
    for i in range(len(ds)):
        s = ds[i]
        assert s["latents"].shape == (4, 8, 6, 8) and s["actions"].shape == (29, 13)
        if s["clip"] == "clip_000001":
            idx = set(s["frame_index"].tolist())
            assert not idx & set(range(frozen[0] + 1, frozen[1] + 1))
