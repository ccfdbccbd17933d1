"""`relic bench stream` on a model directory: a single long horizon (its history over --recompute-max-tokens, so
the recompute baseline has no shorter horizon to extrapolate from), the skipped baseline, and one-line errors."""

import json

import pytest

from relic.cli import main


def _bench(model_dir, out, *extra) -> list[str]:
    return ["bench", "stream", "--model", str(model_dir), "--blocks", "1", "--baseline-blocks", "1",
            "--json", str(out), *extra]


@pytest.mark.slow
def test_single_long_horizon_measures_its_own_recompute_points(model_dir, tmp_path, capsys):
    out = tmp_path / "stream.json"
    # the tiny model has 6 tokens per latent: 20 s = 80 latents = 486 history tokens, over the limit of 100
    assert main(_bench(model_dir, out, "--seconds", "20", "--recompute-max-tokens", "100")) == 0
    res = json.loads(out.read_text())
    assert res["model"] == str(model_dir) and res["resolution"] == [32, 48]
    (row,) = res["horizons"]
    rec = row["baselines"]["recompute"]
    assert rec["estimated"] is True and rec["block_ms_p50"] > 0
    # measured at the longest whole-latent history within the limit, and at the first frame alone
    assert res["recompute_measured_tokens"] == [6, 96]
    assert row["baselines"]["full_cache"]["estimated"] is False


@pytest.mark.slow
def test_recompute_limit_under_one_latent_skips_the_baseline(model_dir, tmp_path):
    out, plot = tmp_path / "stream.json", tmp_path / "stream.png"
    assert main(_bench(model_dir, out, "--seconds", "1", "--recompute-max-tokens", "3", "--plot", str(plot))) == 0
    rec = json.loads(out.read_text())["horizons"][0]["baselines"]["recompute"]
    assert "fps" not in rec and "under one latent's 6 tokens" in rec["skipped"]
    assert plot.stat().st_size > 0                      # the plot leaves the skipped baseline out


def test_recompute_estimate_never_falls_below_a_measured_point():
    """Two noisy timings can put the longer history's time under the shorter's: the quadratic extrapolation then
    keeps the larger measured time instead of going below it (it once reported -146 ms)."""
    import types

    from relic.runtime.bench import _recompute_row

    session = types.SimpleNamespace(cache=types.SimpleNamespace(T=6), frames_per_step=4)
    cfg = types.SimpleNamespace(frames_per_block=1)
    args = types.SimpleNamespace(recompute_max_tokens=100, baseline_blocks=1)
    noisy = [(6, 9.0, 17.0), (96, 8.5, 16.0)]                 # the longer history timed faster
    row = _recompute_row(session, cfg, 80, args, list(noisy))
    assert row["estimated"] and row["block_ms_p50"] == 9.0 and row["cpu_ms_p50"] == 17.0       # the larger
    grows = [(6, 2.0, 4.0), (96, 8.0, 16.0)]
    row = _recompute_row(session, cfg, 80, args, list(grows))
    n, n1, n2 = 81 * 6, 6, 96
    assert row["block_ms_p50"] == round(2.0 + 6.0 / (n2 ** 2 - n1 ** 2) * (n ** 2 - n1 ** 2), 1) > 8.0


def _one_error_line(capsys, *words) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("relic: error:"), err
    for w in words:
        assert w in err[0], (w, err[0])


def test_bench_stream_bad_inputs_are_one_line_and_write_nothing(model_dir, tmp_path, capsys):
    out = tmp_path / "stream.json"
    assert main(["bench", "stream", "--model", str(tmp_path / "nope"), "--json", str(out)]) == 2
    _one_error_line(capsys, "nope", "neither a model directory")
    assert main(_bench(model_dir, tmp_path / "missing" / "s.json")) == 2
    _one_error_line(capsys, "--json", "no such directory", str(tmp_path / "missing"))
    assert main(_bench(model_dir, out, "--plot", str(tmp_path / "missing" / "p.png"))) == 2
    _one_error_line(capsys, "--plot", "no such directory")
    assert main(_bench(model_dir, out, "--threads", "0")) == 2
    _one_error_line(capsys, "--threads must be between 1 and 256")
    assert main(_bench(model_dir, out, "--seconds", "5,x")) == 2
    _one_error_line(capsys, "--seconds")
    assert not out.exists() and not (tmp_path / "missing").exists()


def test_bench_stream_help_shows_defaults_and_no_rst_marks(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")                # no wrapping (argparse breaks lines at hyphens)
    with pytest.raises(SystemExit):
        main(["bench", "stream", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "``" not in text
    assert "default 5,20,60,300" in text and "--model DIR" in text and "weights/relic-tiny" in text
