"""CLI: render (resumable), view, stats, and one-line errors with exit status 2."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from relic.cli import main


@pytest.mark.slow
def test_render_resume_view_stats(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["world", "render", "--out", str(out), "--clips", "2", "--seconds", "1", "--size", "32x16",
                 "--workers", "1", "--seed", "3"]) == 0
    first = sorted(os.listdir(out))
    assert first == ["clip_000000", "clip_000001"]
    m0 = (out / "clip_000000" / "meta.json").stat().st_mtime_ns
    cam = (out / "clip_000001" / "cameras.json").read_bytes()
    os.makedirs(out / ".clip_000002.tmp-stale")                       # debris of a killed run
    assert main(["world", "render", "--out", str(out), "--clips", "3", "--seconds", "1", "--size", "32x16",
                 "--workers", "1", "--seed", "3"]) == 0
    assert sorted(os.listdir(out)) == ["clip_000000", "clip_000001", "clip_000002"]
    assert (out / "clip_000000" / "meta.json").stat().st_mtime_ns == m0      # skipped, not rewritten
    assert (out / "clip_000001" / "cameras.json").read_bytes() == cam

    # an operator preset plus an override is recorded in every clip's meta.json
    rolled = tmp_path / "rolled"
    assert main(["world", "render", "--out", str(rolled), "--clips", "1", "--seconds", "1", "--size", "32x16",
                 "--workers", "1", "--seed", "3", "--operator-preset", "roll", "--operator", "roll_prob=0.9",
                 "--operator", "roll_speed=[8, 30]"]) == 0
    op = json.loads((rolled / "clip_000000" / "meta.json").read_text())["generator"]["operator"]
    assert op["roll_prob"] == 0.9 and op["roll_speed"] == [8.0, 30.0] and op["max_roll"] == 60.0

    img = tmp_path / "v.png"
    assert main(["world", "view", "--seed", "4", "--out", str(img), "--size", "64x32"]) == 0
    a = np.asarray(Image.open(img))
    assert a.shape == (32, 64, 3) and a.std() > 5
    assert main(["world", "view", "--seed", "4", "--out", str(img), "--size", "32",
                 "--pose", "2,2,1.5,45,0"]) == 0

    png = tmp_path / "stats.png"
    js = tmp_path / "stats.json"
    assert main(["world", "stats", str(out), "--out", str(png), "--json", str(js)]) == 0
    assert png.stat().st_size > 1000
    stats = json.loads(js.read_text())
    assert stats["clips"] == 3 and len(stats["action_fraction"]) == 13


@pytest.mark.parametrize("argv,needle", [
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--size", "127"], "even"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--size", "abc"], "size"),
    (["world", "render", "--out", "X", "--clips", "0", "--seconds", "1"], "--clips"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "-1"], "--seconds"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--operator-preset", "drone"], "roll"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--operator", "bogus=1"], "bogus"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--operator", "roll_prob=2"], "roll_prob"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--operator", "roll_speed=3"], "pair"),
    (["world", "render", "--out", "X", "--clips", "1", "--seconds", "1", "--operator", "max_roll=x"], "number"),
    (["world", "view", "--seed", "1", "--out", "X.png", "--pose", "1,2"], "--pose"),
    (["world", "view", "--seed", "1", "--out", "X.gif"], ".png"),
    (["world", "stats", "/nonexistent/dir", "--out", "X.png"], "not a directory"),
])
def test_bad_input_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("relic: error:") and needle in err
    assert not (tmp_path / "X").exists() and not (tmp_path / "X.png").exists()
