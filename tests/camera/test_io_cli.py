"""Readers/writers and `relic data annotate|integrate`, including every bad input of the foundation issue."""

import json
import math

import numpy as np
import pytest

from relic.camera import Trajectory, annotate, geodesic_angle
from relic.camera.io import read_cameras_json, read_re10k, read_ue, write_cameras_json, write_re10k, write_ue
from relic.cli import main
from relic.errors import UserError

from relic.camera.synthetic import smooth_trajectory


def make_traj(T=30, seed=0):
    R, P = smooth_trajectory(seed, T)
    return Trajectory(R, P, np.arange(T) / 16.0, 16.0, 128, 96, (90.0, 90.0, 64.0, 48.0))


@pytest.mark.parametrize("writer,reader", [(write_cameras_json, read_cameras_json), (write_re10k, read_re10k),
                                           (write_ue, read_ue)])
def test_writers_round_trip(tmp_path, writer, reader):
    tr = make_traj()
    path = tmp_path / ("cams.json" if writer is not write_re10k else "cams.txt")
    writer(path, tr)
    kw = {"width": 128, "height": 96} if reader is read_re10k else {}
    back = reader(path, **kw)
    np.testing.assert_allclose(back.R, tr.R, atol=1e-9)
    np.testing.assert_allclose(back.P, tr.P, atol=1e-9)
    np.testing.assert_allclose(back.t, tr.t, atol=1e-6)
    np.testing.assert_allclose(back.intrinsics, tr.intrinsics, rtol=1e-9)
    assert back.fps == pytest.approx(16.0)


def test_annotate_integrate_cli_round_trip_re10k(tmp_path, capsys):
    for seed in range(3):
        tr = make_traj(T=40, seed=seed)
        cam = tmp_path / f"c{seed}.txt"
        write_re10k(cam, tr)
        acts, cams = tmp_path / f"a{seed}.json", tmp_path / f"o{seed}.json"
        assert main(["data", "annotate", "--in", str(cam), "--format", "re10k", "--out", str(acts)]) == 0
        obj = json.loads(acts.read_text())
        assert len(obj["names"]) == 13 and len(obj["actions"]) == 40 and obj["fps"] == pytest.approx(16)
        assert main(["data", "integrate", "--in", str(acts), "--out", str(cams)]) == 0
        out = read_cameras_json(cams)
        # integrate starts at the identity/origin: compare relative to the first pose
        R_rel = np.einsum("tij,kj->tik", tr.R, tr.R[0])
        P_rel = np.einsum("ij,tj->ti", tr.R[0], tr.P - tr.P[0])
        assert np.degrees(geodesic_angle(out.R, R_rel)).max() < 1e-5
        np.testing.assert_allclose(out.P, P_rel, atol=1e-6 * np.abs(P_rel).max())


def _expect_error(capsys, argv, out_path, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("relic: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    assert not out_path.exists()
    assert not list(out_path.parent.glob(f".{out_path.name}*"))  # no temp file left behind


def _cams_json(tmp_path, mutate):
    obj = json.loads(json.dumps({"width": 64, "height": 64, "fps": 16, "intrinsics": [32, 32, 32, 32], "frames": [
        {"t": i / 16, "R_w2c": np.eye(3).tolist(), "position": [0.1 * i, 0, 0]} for i in range(5)]}))
    mutate(obj)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(obj, allow_nan=True))
    return p


BAD_JSON = {
    "nan": (lambda o: o["frames"][2].__setitem__("position", [math.nan, 0, 0]), "frame 2", "NaN"),
    "inf": (lambda o: o["frames"][3]["R_w2c"][0].__setitem__(0, math.inf), "frame 3", "infinite"),
    "non_orthonormal": (lambda o: o["frames"][1]["R_w2c"][0].__setitem__(0, 1.1), "frame 1", "orthonormal"),
    "single_frame": (lambda o: o.__setitem__("frames", o["frames"][:1]), "1 frame", ""),
    "unsorted": (lambda o: o["frames"][3].__setitem__("t", 0.01), "frame 3", "unsorted"),
    "duplicate": (lambda o: o["frames"][4].__setitem__("t", o["frames"][3]["t"]), "frame 4", "duplicate"),
    "mismatched": (lambda o: o["frames"][2].__setitem__("position", [0, 0]), "frame 2", "position"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_annotate_bad_cameras_json(tmp_path, capsys, case):
    mutate, *needles = BAD_JSON[case]
    p = _cams_json(tmp_path, mutate)
    out = tmp_path / "actions.json"
    _expect_error(capsys, ["data", "annotate", "--in", str(p), "--out", str(out)], out, str(p), *needles)


def test_annotate_malformed_re10k_line(tmp_path, capsys):
    p = tmp_path / "c.txt"
    write_re10k(p, make_traj(T=5))
    lines = p.read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 2)[0]
    p.write_text("\n".join(lines) + "\n")
    out = tmp_path / "a.json"
    _expect_error(capsys, ["data", "annotate", "--in", str(p), "--format", "re10k", "--out", str(out)], out,
                  "line 4", "expected 19")


def test_annotate_malformed_json_and_missing_file(tmp_path, capsys):
    p = tmp_path / "c.json"
    p.write_text('{"width": 64,\n "frames": [}')
    out = tmp_path / "a.json"
    _expect_error(capsys, ["data", "annotate", "--in", str(p), "--out", str(out)], out, "line 2", "malformed")
    _expect_error(capsys, ["data", "annotate", "--in", str(tmp_path / "nope.json"), "--out", str(out)], out,
                  "not found")


def test_annotate_bad_ue_csv(tmp_path, capsys):
    p = tmp_path / "ue.csv"
    p.write_text("t,x,y,z,pitch,yaw,roll\n0,0,0,0,0,0,0\n0.1,1,2,3,0,abc,0\n")
    out = tmp_path / "a.json"
    _expect_error(capsys, ["data", "annotate", "--in", str(p), "--out", str(out)], out, "line 3")


@pytest.mark.parametrize("mutate,needle", [
    (lambda o: o["actions"][2].__setitem__(4, float("nan")), "frame 2"),
    (lambda o: o["actions"][1].__setitem__(0, -1.0), "negative"),
    (lambda o: o["actions"][3].pop(), "frame 3"),
    (lambda o: o.__setitem__("actions", o["actions"][:1]), "at least 2"),
    (lambda o: o.__setitem__("names", ["x"] * 13), "names"),
])
def test_integrate_bad_actions(tmp_path, capsys, mutate, needle):
    tr = make_traj(T=6)
    acts, d = annotate(tr.R, tr.P)
    obj = {"names": list(__import__("relic").camera.ACTION_NAMES), "actions": acts.tolist(),
           "mean_displacement": d, "fps": 16}
    mutate(obj)
    p = tmp_path / "a.json"
    p.write_text(json.dumps(obj))
    out = tmp_path / "c.json"
    _expect_error(capsys, ["data", "integrate", "--in", str(p), "--out", str(out)], out, needle)


def test_trajectory_validate_direct():
    tr = make_traj(T=3)
    tr.t[2] = tr.t[1]
    with pytest.raises(UserError, match="frame 2: duplicate"):
        tr.validate("x")


def test_help_for_every_subcommand(capsys):
    for argv in (["--help"], ["data", "--help"], ["data", "annotate", "--help"], ["data", "integrate", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    assert "usage" in capsys.readouterr().out
