"""`relic generate`: a real run on a tiny random model directory, and one-line errors (exit 2) that leave
nothing behind and cost nothing (the model is never loaded for a bad input)."""

import cv2
import numpy as np
import pytest

from relic.cli import main
from relic.runtime.stream import StreamingSession
from relic.video import read_video


@pytest.fixture
def image(tmp_path):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    return img


@pytest.mark.slow
def test_generate_writes_mp4(model_dir, image, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["generate", "--image", str(image), "--prompt", "a hall", "--actions", "w*6 left*2",
               "--out", str(out), "--model", str(model_dir)])
    assert rc == 0
    video = read_video(out)
    assert video.shape == (1 + 8, 32, 48, 3)
    captured = capsys.readouterr()
    # start-up and the steady state are reported apart; the progress bar counts video frames
    assert "start-up:" in captured.out and "model load" in captured.out
    assert "steady state:" in captured.out and "FPS over the 1 block(s) after the first" in captured.out
    assert "9/9" in captured.err


@pytest.mark.slow
def test_generate_seconds_form_and_one_block(model_dir, image, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    # 0.25 s at the model's 16 FPS = 4 video frames = one block of the tiny model
    assert main(["generate", "--image", str(image), "--prompt", "x", "--actions", "w*0.25s",
                 "--out", str(out), "--model", str(model_dir)]) == 0
    assert read_video(out).shape[0] == 1 + 4
    assert "steady state: not measured (one block" in capsys.readouterr().out


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is loaded: every bad input must be refused before any work."""
    def fail(*a, **k):
        raise AssertionError("the model was loaded for a bad input")

    monkeypatch.setattr(StreamingSession, "from_pretrained", classmethod(fail))


def _one_error_line(capsys, *words) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("relic: error:"), err
    for w in words:
        assert w in err[0], (w, err[0])
    return err[0]


def test_generate_bad_inputs(model_dir, tmp_path, capsys, no_model):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.zeros((20, 20, 3), np.uint8))
    base = ["generate", "--prompt", "x", "--out", str(tmp_path / "o.mp4"), "--model", str(model_dir)]
    assert main(base + ["--image", str(tmp_path / "missing.png"), "--actions", "w"]) == 2
    _one_error_line(capsys, "missing.png", "no such image file")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(base + ["--image", str(tmp_path / "junk.png"), "--actions", "w"]) == 2
    _one_error_line(capsys, "junk.png", "cannot read the image")
    assert main(base + ["--image", str(img), "--actions", "w*4 jump"]) == 2
    _one_error_line(capsys, "jump")
    assert main(base + ["--image", str(img), "--actions", "w*0.1s"]) == 2
    _one_error_line(capsys, "1.6 video frames at 16 FPS")
    assert not (tmp_path / "o.mp4").exists()


def test_generate_image_that_is_a_directory(model_dir, tmp_path, capsys, no_model):
    (tmp_path / "shots").mkdir()
    assert main(["generate", "--image", str(tmp_path / "shots"), "--prompt", "x", "--actions", "w",
                 "--out", str(tmp_path / "o.mp4"), "--model", str(model_dir)]) == 2
    line = _one_error_line(capsys, "shots", "is a directory")
    assert "no such" not in line
    assert not (tmp_path / "o.mp4").exists()


def test_generate_out_in_a_missing_directory_is_refused_and_not_created(model_dir, image, tmp_path, capsys,
                                                                          no_model):
    missing = tmp_path / "nonexistent" / "dir"
    assert main(["generate", "--image", str(image), "--prompt", "x", "--actions", "w",
                 "--out", str(missing / "a.mp4"), "--model", str(model_dir)]) == 2
    _one_error_line(capsys, "--out", "no such directory", str(missing))
    assert not (tmp_path / "nonexistent").exists()
    (tmp_path / "o.mp4").mkdir()
    assert main(["generate", "--image", str(image), "--prompt", "x", "--actions", "w",
                 "--out", str(tmp_path / "o.mp4"), "--model", str(model_dir)]) == 2
    _one_error_line(capsys, "is a directory")
    assert not list((tmp_path / "o.mp4").iterdir())


def test_generate_script_over_max_seconds_is_refused_before_any_work(model_dir, image, tmp_path, capsys,
                                                                     no_model):
    base = ["generate", "--image", str(image), "--prompt", "x", "--out", str(tmp_path / "o.mp4"),
            "--model", str(model_dir)]
    assert main(base + ["--actions", "w*100000"]) == 2          # 104 minutes of video
    _one_error_line(capsys, "6250 s of video (100000 frames at 16 FPS)", "--max-seconds 300")
    assert main(base + ["--actions", "w*2s left*2s", "--max-seconds", "3"]) == 2
    _one_error_line(capsys, "4 s of video", "--max-seconds 3")
    for bad in ("0", "-1", "nan"):
        assert main(base + ["--actions", "w", "--max-seconds", bad]) == 2
        _one_error_line(capsys, "--max-seconds must be a positive number")
    assert main(base + ["--actions", "w", "--threads", "0"]) == 2
    _one_error_line(capsys, "--threads must be between 1 and 256")
    assert not (tmp_path / "o.mp4").exists()
