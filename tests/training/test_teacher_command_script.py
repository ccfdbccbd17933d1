"""scripts/teacher_command.py: the command-sensitivity diagnostic's flipped commands are the opposite motions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from relic.camera.actions import integrate
from relic.eval.direction import MOTIONS
from relic.eval.suites.common import motion_rows, script

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("teacher_command", ROOT / "scripts" / "teacher_command.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flipped_command_is_the_opposite_motion_and_keeps_the_rest():
    """Exchanging dolly in/out in a dolly-in + pan-right command gives the poses of dolly-out + pan-right
    (re-integrated, per latent), and the pan is untouched; exchanging twice is the identity."""
    mod = _script()
    a = torch.as_tensor(np.stack([script(motion_rows(8, dolly_in=1.0, pan_right=2.0)),
                                  script(motion_rows(8, roll_cw=2.0))]), dtype=torch.float32)   # (2 9 13)
    flipped, R, P = mod.flipped(a, ("dolly_in", "dolly_out"))
    want = script(motion_rows(8, dolly_out=1.0, pan_right=2.0))
    assert np.allclose(flipped[0].numpy(), want)
    Rw, Pw = integrate(want, 1.0)
    assert np.allclose(R[0].numpy(), Rw[::4], atol=1e-6) and np.allclose(P[0].numpy(), Pw[::4], atol=1e-5)
    assert torch.equal(flipped[1], a[1])                                  # no dolly in it: nothing changes
    again, _, _ = mod.flipped(flipped, ("dolly_in", "dolly_out"))
    assert torch.equal(again, a)
    r, _, _ = mod.flipped(a, ("roll_cw", "roll_ccw"))
    assert r[1, 1:, MOTIONS.index("roll_ccw")].min() > 0 and r[1, :, MOTIONS.index("roll_cw")].abs().max() == 0
