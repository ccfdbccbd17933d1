"""The simulated camera operator: smooth, collision-free 6-DoF paths with deliberate revisits (paper §3.1-3.4).

The operator flies in segments. Each segment drives one action or a combination (dolly, truck, pedestal,
pan, tilt and, sparingly, roll) with a smooth velocity ramp (raised-cosine in and out), at speeds of a
person flying a camera: translation ~0.4-1.4 m/s, pans ~15-60 °/s, tilts ~8-25 °/s, rolls ~4-10 °/s.
Segment types are drawn from a balanced distribution (not forward-dominated). Every segment is simulated
ahead and rejected if the camera would come closer than ``clearance`` to any solid (or leave the scene's
bounds), so paths are collision-free by construction; a pure rotation is the always-safe fallback.

Deliberate revisits (:class:`Revisit`):
* ``turn_back``: pan away by up to 60-180° and back by exactly the same per-frame angles;
* ``return``: move out over a few segments, then retrace the same path in reverse at another speed;
* ``loop``: orbit a point (often a landmark) through 360°, or turn a full circle in place.
Each records the pair (frame j, of frame i < j) whose poses coincide.

Motion limits. Revisits obey the same limits as ordinary segments; every segment of a clip stays below
(measured frame to frame like the curation filters of :mod:`relic.data.filters`):

======================== ================================ =====================================================
quantity                 limit (OperatorConfig)           curation filter threshold (FilterConfig)
======================== ================================ =====================================================
angular speed            ``max_angular_speed`` 120 °/s    ``pan_speed`` 230 °/s (``fast_pan`` defect 250-450)
translation speed        ``max_speed`` 1.6 m/s            ``pan_speed`` 4 m/s
angular acceleration     ``max_angular_accel`` 600 °/s²   ``abrupt_rotation`` 1500 °/s²
linear acceleration      ``max_accel`` 8 m/s²             ``velocity_profile`` 15 m/s²
======================== ================================ =====================================================

A revisit that does not fit in the frames left in the clip is shortened (a smaller turn-back angle, a shorter
way out) or skipped, never sped up: turn-backs keep their sampled pan speed (≤ 78°/s), the way back of a
``return`` is at most 1.3× (and within the limits) the speed of the way out, and an orbit's tangential speed is
at most the top walking speed ``speed[1]``. Every candidate segment is also measured (:func:`motion_peaks`,
including the two frames before it, so the junction counts) and rejected if it breaks a limit.

State is (position, heading, pitch, roll); the world-to-camera rotation is :func:`pose_rotation`. Translation
velocities are in the camera frame (OpenCV axes: x right, y down, z forward), so relic.camera.annotate
recovers the intended actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from relic.camera.geometry import geodesic_angle
from relic.camera.trajectory import Trajectory
from relic.world.scenes import Scene

# channel order of a segment's velocity: dolly (+z), truck (+x), pedestal (up = -y) in m/s,
# pan (+right), tilt (+up), roll (+clockwise) in degrees/s
CHANNELS = ("dolly", "truck", "pedestal", "pan", "tilt", "roll")


@dataclass(frozen=True)
class OperatorConfig:
    """Operator behaviour.

    Attributes:
        clearance: minimum distance (m) between the camera centre and any solid or the bounds.
        speed: (min, max) translation speed m/s; pan_speed, tilt_speed, roll_speed in degrees/s.
        segment_seconds: (min, max) segment duration; ramp_seconds: velocity ramp in and out.
        max_pitch, max_roll: attitude limits in degrees.
        roll_prob: probability that a segment is a roll; revisit_prob: that the next event is a revisit.
        fov_deg: horizontal field of view of the intrinsics.
        min_view: segments preferably end looking at least this far (m) before hitting a surface.
        max_speed, max_angular_speed, max_accel, max_angular_accel: hard limits (m/s, °/s, m/s², °/s²)
            that every segment, revisits included, stays below (see the module docstring).
        min_turn_back: smallest turn-back angle (degrees) worth flying when a turn-back must be shortened.
    """

    clearance: float = 0.35
    speed: tuple[float, float] = (0.4, 1.4)
    pedestal_speed: tuple[float, float] = (0.25, 0.6)
    pan_speed: tuple[float, float] = (15.0, 60.0)
    tilt_speed: tuple[float, float] = (8.0, 25.0)
    roll_speed: tuple[float, float] = (4.0, 10.0)
    segment_seconds: tuple[float, float] = (1.0, 3.0)
    ramp_seconds: float = 0.4
    max_pitch: float = 25.0
    max_roll: float = 12.0
    roll_prob: float = 0.06
    revisit_prob: float = 0.12
    fov_deg: float = 90.0
    min_view: float = 2.0
    max_speed: float = 1.6
    max_angular_speed: float = 120.0
    max_accel: float = 8.0
    max_angular_accel: float = 600.0
    min_turn_back: float = 30.0

    def check(self) -> "OperatorConfig":
        """Raise ValueError naming the first field out of range; returns self."""
        for name in ("speed", "pedestal_speed", "pan_speed", "tilt_speed", "roll_speed", "segment_seconds"):
            lo, hi = getattr(self, name)
            if not (0 <= lo <= hi):
                raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got {getattr(self, name)}")
        for name in ("roll_prob", "revisit_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("clearance", "ramp_seconds", "max_pitch", "max_roll", "fov_deg", "max_speed",
                     "max_angular_speed", "max_accel", "max_angular_accel"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.roll_speed[1] > self.max_angular_speed or self.pan_speed[1] > self.max_angular_speed:
            raise ValueError(f"roll_speed and pan_speed must stay below max_angular_speed {self.max_angular_speed}")
        return self


#: Named operators for ``relic world render --operator-preset``. ``roll``: a roll in half the segments, up to
#: 40 °/s and ±60° (the default operator rolls in 6 %, at ≤ 10 °/s and ±12°, while the keyboard's Z/X and the
#: actions suite command 2° per frame = 32 °/s): a supplement that lets a teacher learn to read the roll command.
OPERATOR_PRESETS: dict[str, OperatorConfig] = {
    "default": OperatorConfig(),
    "roll": OperatorConfig(roll_prob=0.5, roll_speed=(8.0, 40.0), max_roll=60.0),
}


@dataclass
class Revisit:
    """Frame ``frame`` revisits frame ``of`` (< frame); ``kind`` is turn_back, return or loop."""

    frame: int
    of: int
    kind: str

    def to_json(self, traj: Trajectory | None = None) -> dict:
        d = {"frame": int(self.frame), "of": int(self.of), "kind": self.kind}
        if traj is not None:
            d["distance_m"] = float(np.linalg.norm(traj.P[self.frame] - traj.P[self.of]))
            d["angle_deg"] = float(np.rad2deg(geodesic_angle(traj.R[self.frame], traj.R[self.of])))
        return d


@dataclass
class OperatorPath:
    """States (t 6) = (x, y, z, heading°, pitch°, roll°), segment labels per frame and revisits."""

    states: np.ndarray
    labels: list[str] = field(default_factory=list)
    revisits: list[Revisit] = field(default_factory=list)


def pose_rotation(heading: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Degrees (...,) -> world-to-camera rotations (..., 3, 3) in relic's convention.

    heading is the compass angle of the view in the world x-y plane (counter-clockwise from +x, so a pan to
    the right *decreases* it), pitch > 0 looks up, roll > 0 turns the camera clockwise as seen from behind.
    """
    h, p, r = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (heading, pitch, roll))
    f = np.stack([np.cos(p) * np.cos(h), np.cos(p) * np.sin(h), np.sin(p)], -1)
    right0 = np.stack([np.sin(h), -np.cos(h), np.zeros_like(h)], -1)
    down0 = np.cross(f, right0)
    cr, sr = np.cos(r)[..., None], np.sin(r)[..., None]
    right = cr * right0 + sr * down0
    down = -sr * right0 + cr * down0
    return np.stack([right, down, f], -2)


def intrinsics_for(width: int, height: int, fov_deg: float = 90.0) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of square pixels with a horizontal field of view ``fov_deg``."""
    f = (width / 2.0) / np.tan(np.deg2rad(fov_deg) / 2.0)
    return (float(f), float(f), width / 2.0, height / 2.0)


def states_to_trajectory(states: np.ndarray, fps: float, width: int, height: int,
                         fov_deg: float = 90.0) -> Trajectory:
    """(t 6) operator states -> a :class:`Trajectory`."""
    R = pose_rotation(states[:, 3], states[:, 4], states[:, 5])
    t = np.arange(len(states)) / fps
    return Trajectory(R, states[:, :3].copy(), t, fps, width, height, intrinsics_for(width, height, fov_deg))


def envelope(n: int, ramp: int) -> np.ndarray:
    """(n,) velocity profile: raised-cosine ramp up over ``ramp`` frames, plateau, ramp down; ends near 0."""
    ramp = max(1, min(ramp, n // 2))
    e = np.ones(n)
    k = np.arange(ramp)
    up = 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / ramp)
    e[:ramp] = up
    e[n - ramp:] = up[::-1]
    return e


def _integrate(state: np.ndarray, vel: np.ndarray, dt: float) -> np.ndarray:
    """Roll out per-frame velocities (n 6) from ``state`` -> the n following states (n 6)."""
    out = np.empty((len(vel), 6))
    s = state.copy()
    for k in range(len(vel)):
        R = pose_rotation(s[3], s[4], s[5])
        d = vel[k] * dt
        # camera-frame translation: dolly +z, truck +x, pedestal up = -y
        s[:3] = s[:3] + R.T @ np.array([d[1], -d[2], d[0]])
        s[3] -= d[3]           # pan right decreases heading
        s[4] += d[4]
        s[5] += d[5]
        out[k] = s
    return out


def motion_peaks(states: np.ndarray, fps: float) -> tuple[float, float, float, float]:
    """(t 6) operator states -> peak (speed m/s, angular speed °/s, acceleration m/s², angular accel °/s²).

    Measured frame to frame as relic.data.filters does: the angular velocity of step k-1→k is the rotation
    vector of R_k R_{k-1}^T times fps (camera frame), accelerations are differences of consecutive velocities
    times fps.
    """
    states = np.asarray(states, dtype=np.float64).reshape(-1, 6)
    if len(states) < 2:
        return 0.0, 0.0, 0.0, 0.0
    R = pose_rotation(states[:, 3], states[:, 4], states[:, 5])
    v = np.diff(states[:, :3], axis=0) * fps
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])
    w = np.rad2deg(Rotation.from_matrix(dR).as_rotvec()) * fps
    a = np.linalg.norm(np.diff(v, axis=0), axis=-1) * fps if len(v) > 1 else np.zeros(1)
    alpha = np.linalg.norm(np.diff(w, axis=0), axis=-1) * fps if len(w) > 1 else np.zeros(1)
    return (float(np.linalg.norm(v, axis=-1).max()), float(np.linalg.norm(w, axis=-1).max()),
            float(a.max()), float(alpha.max()))


class Operator:
    """Generates one clip's path in ``scene`` from a random generator."""

    def __init__(self, scene: Scene, rng: np.random.Generator, fps: float = 16.0,
                 config: OperatorConfig = OperatorConfig()):
        self.scene, self.rng, self.fps, self.cfg = scene, rng, float(fps), config
        self.dt = 1.0 / self.fps

    # -- helpers -------------------------------------------------------------------------------------
    def safe(self, states: np.ndarray) -> bool:
        """True when every state keeps the clearance (and the segment between states does too)."""
        if len(states) == 0:
            return True
        return bool((self.scene.clearance(states[:, :3]) >= self.cfg.clearance).all())

    def smooth(self, states: np.ndarray, before: np.ndarray | None = None) -> bool:
        """True when ``states`` (n 6), continuing from the states ``before`` (m 6, the last two frames of the
        path so far), stay below the speed and acceleration limits of the config."""
        cfg = self.cfg
        seq = states if before is None else np.concatenate([np.asarray(before).reshape(-1, 6), states])
        v, w, a, alpha = motion_peaks(seq, self.fps)
        return (v <= cfg.max_speed and w <= cfg.max_angular_speed and a <= cfg.max_accel
                and alpha <= cfg.max_angular_accel)

    def view_distance(self, states: np.ndarray, far: float = 30.0) -> np.ndarray:
        """(n 6) -> (n,) distance along each camera's optical axis to the first solid (sphere tracing)."""
        states = np.asarray(states, dtype=np.float64).reshape(-1, 6)
        f = pose_rotation(states[:, 3], states[:, 4], states[:, 5])[:, 2]
        t = np.full(len(states), 0.05)
        for _ in range(32):
            d = self.scene.colliders.distance(states[:, :3] + t[:, None] * f)
            t = np.where(d > 0.02, np.minimum(t + d, far), t)
        return t

    def looks_open(self, state: np.ndarray) -> bool:
        """False when the camera would stare at a surface closer than ``min_view`` metres."""
        return bool(self.view_distance(state[None])[0] >= self.cfg.min_view)

    def start_state(self) -> np.ndarray:
        lo, hi = self.scene.bounds
        best, best_d = None, -np.inf
        for _ in range(200):
            p = self.rng.uniform(lo, hi)
            p[2] = self.rng.uniform(1.2, min(2.0, hi[2] - 0.5))
            d = float(self.scene.clearance(p[None])[0])
            if d > best_d:
                best, best_d = p, d
            if d > self.cfg.clearance + 0.8:
                break
        if best_d < self.cfg.clearance:
            raise RuntimeError(f"scene {self.scene.seed}: no free start position")
        cands = np.array([[*best, h, self.rng.uniform(-5, 5), 0.0]
                          for h in self.rng.uniform(-180, 180) + np.arange(0, 360, 30)])
        dist = self.view_distance(cands)
        return cands[int(np.argmax(dist))]

    def _frames(self, seconds: float) -> int:
        return max(2, int(round(seconds * self.fps)))

    def _segment(self, state: np.ndarray, max_frames: int) -> tuple[np.ndarray, str]:
        """Sample one motion segment -> (velocities (n 6), label)."""
        cfg, rng = self.cfg, self.rng
        n = min(max_frames, self._frames(rng.uniform(*cfg.segment_seconds)))
        ramp = self._frames(cfg.ramp_seconds)
        # a segment too short for full ramps gets a proportionally lower peak (bounded acceleration)
        env = envelope(n, ramp) * min(1.0, (n // 2) / ramp)
        vel = np.zeros((n, 6))
        if env.sum() < 1e-9:
            return vel, "static"
        if rng.random() < cfg.roll_prob:
            target = rng.uniform(-cfg.max_roll, cfg.max_roll)
            vel[:, 5] = (target - state[5]) / (env.sum() * self.dt) * env
            vel[:, 5] = np.clip(vel[:, 5], -cfg.roll_speed[1], cfg.roll_speed[1])
            return vel, "roll"
        kind = rng.choice(["translate", "rotate", "combined"], p=[0.45, 0.2, 0.35])
        if kind == "translate":
            chans = [int(rng.choice([0, 1, 2], p=[0.5, 0.3, 0.2]))]
        elif kind == "rotate":
            chans = [int(rng.choice([3, 4], p=[0.6, 0.4]))]
        else:
            chans = [int(rng.choice([0, 1, 2], p=[0.5, 0.3, 0.2])), int(rng.choice([3, 4], p=[0.55, 0.45]))]
        for c in chans:
            sign = rng.choice([-1.0, 1.0])
            if c in (0, 1):
                mag = rng.uniform(*cfg.speed)
            elif c == 2:
                mag = rng.uniform(*cfg.pedestal_speed)
                # pedestal towards a comfortable height band
                z = state[2]
                sign = 1.0 if z < 1.0 else (-1.0 if z > 2.4 else sign)
            elif c == 3:
                mag = rng.uniform(*cfg.pan_speed)
                # operators mostly turn towards open space: compare the view 60° to either side
                side = np.repeat(state[None], 2, 0)
                side[:, 3] += [-60.0, 60.0]                  # pan right, pan left
                d_right, d_left = self.view_distance(side)
                if rng.random() < 0.7:
                    sign = 1.0 if d_right >= d_left else -1.0
            else:
                mag = rng.uniform(*cfg.tilt_speed)
                # tilt towards level more often than away, and never past max_pitch
                if abs(state[4]) > 10 and rng.random() < 0.7:
                    sign = -np.sign(state[4])
                room = (cfg.max_pitch - sign * state[4]) / (env.sum() * self.dt)
                mag = max(0.0, min(mag, room))
            vel[:, c] = sign * mag * env
        return vel, "+".join(CHANNELS[c] for c in chans)

    # -- revisits ------------------------------------------------------------------------------------
    def _turn_back(self, state: np.ndarray, budget: int) -> tuple[np.ndarray, list[str]] | None:
        """Pan away and back by exactly the same per-frame angles, at a sampled operator pan speed.

        When the clip has too few frames left, the hold shrinks and the turn gets a smaller angle at the same
        speed; below ``min_turn_back`` degrees it is skipped (None).
        """
        cfg, rng = self.cfg, self.rng
        angle = rng.uniform(60, 180)
        speed = min(rng.uniform(*cfg.pan_speed) * 1.3, cfg.max_angular_speed)
        ramp = self._frames(cfg.ramp_seconds)
        n = self._frames(angle / speed + cfg.ramp_seconds)
        hold = self._frames(rng.uniform(0.2, 1.0))
        shortened = 2 * n + hold > budget
        if shortened:
            hold = min(hold, self._frames(0.2))
            n = (budget - hold) // 2
            if n < 2:
                return None
        env = envelope(n, ramp) * (min(1.0, (n // 2) / ramp) if shortened else 1.0)
        if shortened:
            angle = min(angle, speed * env.sum() * self.dt)      # never faster than the sampled speed
            if angle < cfg.min_turn_back:
                return None
        sign = rng.choice([-1.0, 1.0])
        w = sign * env * (angle / (env.sum() * self.dt))
        vel = np.zeros((2 * n + hold, 6))
        vel[:n, 3] = w
        vel[n + hold:, 3] = -w[::-1]
        out = _integrate(state, vel, self.dt)
        out[-1, 3:] = state[3:]                       # exact return (removes float round-off)
        return out, ["pan"] * n + ["static"] * hold + ["pan"] * n

    def _return(self, state: np.ndarray, budget: int) -> tuple[np.ndarray, list[str]] | None:
        """Go out over 1-3 translating segments, then retrace the path backwards at another speed.

        The speed factor of the way back is drawn first (0.75-1.3) and the way out gets only the frames that
        leave room for the way back at that speed; the factor is lowered further when the retraced path would
        break a motion limit (speeds scale with the factor, accelerations with its square). If the way back
        then does not fit, the return is skipped (None) rather than squeezed.
        """
        cfg, rng = self.cfg, self.rng
        ramp = self._frames(cfg.ramp_seconds)
        n_segments = int(rng.integers(1, 4))
        factor = rng.uniform(0.75, 1.3)                           # speed of the way back / way out
        out_max = int((budget - 1) * factor / (1.0 + factor))     # way out + way back fit the budget
        out_states, labels = [state[None]], []
        cur = state
        used = 0
        for _ in range(n_segments):
            room = min(out_max - used, max(2 * ramp, budget // 3 - used))
            if room < 4:
                break
            for _try in range(8):
                vel, lab = self._segment(cur, room)
                if not (vel[:, :3] != 0).any():
                    continue
                seg = _integrate(cur, vel, self.dt)
                if self.safe(seg):
                    break
            else:
                continue
            out_states.append(seg)
            labels += [lab] * len(seg)
            cur = seg[-1]
            used += len(seg)
        if used < 4:
            return None
        path = np.concatenate(out_states)                      # includes the start state
        v, w, acc, alpha = motion_peaks(path, self.fps)
        tiny = 1e-9
        factor = min(factor, cfg.max_speed / max(v, tiny), cfg.max_angular_speed / max(w, tiny),
                     np.sqrt(cfg.max_accel / max(acc, tiny)), np.sqrt(cfg.max_angular_accel / max(alpha, tiny)))
        n_back = max(2, int(np.ceil((len(path) - 1) / factor - 1e-9)))
        if used + n_back > budget:
            return None
        src = np.linspace(len(path) - 1, 0, n_back + 1)[1:]
        back = np.stack([np.interp(src, np.arange(len(path)), path[:, c]) for c in range(6)], -1)
        back[-1] = state
        return np.concatenate([path[1:], back]), labels + ["return"] * n_back

    def _loop(self, state: np.ndarray, budget: int) -> tuple[np.ndarray, list[str]] | None:
        """Orbit through 360° around a point ahead (camera facing it), or spin in place if no orbit fits.

        Orbits that do not fit in ``budget`` frames are not sped up; another radius is tried, then None.
        """
        rng = self.rng
        for _try in range(6):
            radius = rng.uniform(1.2, 3.5) if _try < 5 else 0.0
            speed = rng.uniform(30, 60)
            if radius > 0:                      # the orbit's tangential speed is at most walking speed
                speed = min(speed, float(np.rad2deg(self.cfg.speed[1] / radius)))
            n = self._frames(360.0 / speed + self.cfg.ramp_seconds)
            if n > budget:                      # too long for the clip: try another (smaller) one
                continue
            env = envelope(n, self._frames(self.cfg.ramp_seconds))
            dth = env * (360.0 / env.sum())                       # degrees per frame, sums to 360
            sign = rng.choice([-1.0, 1.0])
            s = state.copy()
            s[4], s[5] = state[4], state[5]
            out = np.empty((n, 6))
            for k in range(n):
                R = pose_rotation(s[3], s[4], s[5])
                a = np.deg2rad(dth[k])
                # orbit: exact chord of the circle around the point `radius` ahead (level plane)
                fwd_flat = np.array([np.cos(np.deg2rad(s[3])), np.sin(np.deg2rad(s[3])), 0.0])
                right_flat = np.array([np.sin(np.deg2rad(s[3])), -np.cos(np.deg2rad(s[3])), 0.0])
                s[:3] = s[:3] + radius * (np.sin(a) * sign * right_flat + (1 - np.cos(a)) * fwd_flat)
                s[3] += sign * dth[k]        # truck right (sign>0) while panning left keeps facing the centre
                del R
                out[k] = s
            out[-1, :3] = state[:3] if radius > 0 else out[-1, :3]
            out[-1, 3] = state[3] + sign * 360.0
            if self.safe(out):
                lab = "truck+pan" if radius > 0 else "pan"
                return out, [lab] * n
        return None

    # -- main ----------------------------------------------------------------------------------------
    def fly(self, n_frames: int) -> OperatorPath:
        """A path of exactly ``n_frames`` states with at least one revisit when the clip is long enough."""
        rng = self.rng
        state = self.start_state()
        states, labels, revisits = [state[None]], ["static"], []
        tail = state[None]                      # the last two states, for the acceleration at a junction
        count = 1
        first_revisit_at = int(rng.integers(n_frames // 8, max(n_frames // 8 + 1, n_frames // 3)))
        while count < n_frames:
            budget = n_frames - count
            want_revisit = (not revisits and count >= first_revisit_at) or rng.random() < self.cfg.revisit_prob
            done = False
            if want_revisit:
                kinds = ["turn_back", "return", "loop"]
                order = rng.permutation(3) if revisits else [*rng.permutation(2), 2]
                for k in order:
                    kind = kinds[k]
                    res = {"turn_back": self._turn_back, "return": self._return, "loop": self._loop}[kind](
                        state, budget)
                    if res is None:
                        continue
                    seg, lab = res
                    if (kind != "turn_back" and not self.safe(seg)) or not self.smooth(seg, tail):
                        continue
                    i = count - 1
                    states.append(seg)
                    labels += lab
                    count += len(seg)
                    revisits.append(Revisit(count - 1, i, kind))
                    state = seg[-1].copy()
                    tail = np.concatenate([tail, seg])[-2:]
                    if kind == "loop":
                        state[3] = (state[3] + 180.0) % 360.0 - 180.0   # same orientation, wrapped heading
                        seg[-1, 3] = state[3]
                        tail[-1, 3] = state[3]
                    done = True
                    break
            if not done:
                for _try in range(12):
                    vel, lab = self._segment(state, budget)
                    seg = _integrate(state, vel, self.dt)
                    if self.safe(seg) and self.smooth(seg, tail) and (self.looks_open(seg[-1]) or _try >= 9):
                        break
                else:   # always-safe fallback: pan in place (short ones with a lower peak, like segments)
                    n = min(budget, self._frames(1.5))
                    ramp = self._frames(self.cfg.ramp_seconds)
                    vel = np.zeros((n, 6))
                    vel[:, 3] = rng.choice([-1, 1]) * 40.0 * envelope(n, ramp) * min(1.0, (n // 2) / ramp)
                    seg, lab = _integrate(state, vel, self.dt), "pan"
                # occasionally a short hold between segments
                if rng.random() < 0.15 and len(seg) < budget:
                    hold = min(budget - len(seg), self._frames(rng.uniform(0.2, 0.6)))
                    seg = np.concatenate([seg, np.repeat(seg[-1:], hold, 0)])
                    labels += [lab] * (len(seg) - hold) + ["static"] * hold
                else:
                    labels += [lab] * len(seg)
                states.append(seg)
                count += len(seg)
                state = seg[-1].copy()
                tail = np.concatenate([tail, seg])[-2:]
        path = np.concatenate(states)[:n_frames]
        labels = labels[:n_frames]
        revisits = [r for r in revisits if r.frame < n_frames]
        return OperatorPath(path, labels, revisits)
