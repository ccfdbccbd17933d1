"""The server's adapter on the real StreamingSession (a small random relic-tiny config)."""

from __future__ import annotations

import numpy as np
import pytest

from relic.camera import KeyMap
from relic.serve.engine import Engine
from relic.serve.stream import pose_summary


@pytest.fixture(scope="module")
def engine():
    import torch

    from relic.config import relic_tiny
    from relic.runtime.stream import StreamingSession

    cfg = relic_tiny()
    cfg.height, cfg.width = 64, 112
    cfg.dit.num_layers = 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Engine(StreamingSession.from_pretrained("relic-tiny", config=cfg))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_engine_drives_the_real_session(engine):
    assert (engine.width, engine.height) == (112, 64)
    image = np.random.default_rng(0).integers(0, 255, (64, 112, 3), dtype=np.uint8)
    engine.start(image, "a courtyard", seed=3)
    assert engine.first_frame().shape == (64, 112, 3) and engine.first_frame().dtype == np.uint8
    f = engine.frames_per_step()
    forward = np.repeat(KeyMap().action_from_keys(["w"])[None], f, 0)
    frames = engine.step(forward, 2.0)
    assert frames.shape == (f, 64, 112, 3) and frames.dtype == np.uint8
    R, P = engine.poses()
    assert len(R) == len(P) == 1 + f
    assert engine.memory_tokens() > 0
    # γ = 2 doubles the step: the map position moves straight ahead by 2 per frame
    x, y, heading = pose_summary(R[-1], P[-1], R[0], P[0])
    assert x == pytest.approx(0.0, abs=1e-6) and y == pytest.approx(2.0 * f) and heading == pytest.approx(90.0)
    engine.step(forward, 1.0)
    assert len(engine.poses()[0]) == 1 + 2 * f
    # reset: back to the start image with the same prompt and seed, the path starts over
    first = engine.first_frame().copy()
    engine.reset()
    assert len(engine.poses()[0]) == 1
    np.testing.assert_array_equal(engine.first_frame(), first)
    engine.clear()
    engine.warm_up(blocks=1)
