"""One browser session: a generation worker thread driving an engine, with paced latest-frame-wins delivery.

Threads and the event loop
--------------------------
* The **worker thread** owns the engine (:class:`relic.serve.engine.Engine`). It takes control commands
  (start, reset, record) from a queue, snapshots the latest input state (held keys, mouse motion since the
  last block, γ, the newest client timestamp), turns it into per-frame 13-D actions with
  :class:`relic.camera.KeyMap`, calls ``engine.step`` and JPEG-encodes the frames. It never touches the
  socket; it hands frames to the event loop with ``call_soon_threadsafe``.
* **Pacing**: the frames of a block are shown at the model's frame rate. Frame i of a block is due at
  ``t0 + i / fps`` where ``t0`` is when the previous block's playback ends (or now, if generation fell
  behind). The worker generates the next block while the current one plays, and never runs more than one
  block ahead, so the delay from an input to the frame showing it stays at about one block.
* **Latest-frame-wins**: a due frame goes into a one-frame slot, replacing any frame not yet sent. The
  sender coroutine sends the slot only while fewer than ``max_inflight_frames`` frames are unacknowledged
  (the page acks each frame it draws), so a slow client drops frames instead of building a queue anywhere
  (not in Python, not in the kernel's socket buffers).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from relic.camera import KeyMap
from relic.serve.engine import Engine
from relic.serve.images import encode_jpeg
from relic.serve.limits import ServeConfig
from relic.serve.protocol import Input, pack_frame
from relic.video import Mp4Writer

log = logging.getLogger("relic.serve")


@dataclass
class InputState:
    """The latest client input, merged from many small messages (guarded by a lock)."""

    keys: tuple[str, ...] = ()
    dx: float = 0.0          # mouse pixels accumulated since the last block
    dy: float = 0.0
    gamma: float = 1.0
    t: float | None = None   # newest client timestamp received
    t_used: float | None = None


def pose_summary(R: np.ndarray, P: np.ndarray, R0: np.ndarray, P0: np.ndarray) -> list[float]:
    """A pose seen from above, in the map of the first camera -> [x, y, heading_deg].

    The map's x axis is the first camera's right, its y axis the first camera's forward (both OpenCV axes,
    ``R0.T @ e``), so the map is level with the start view whatever the world convention. ``R``, ``R0`` are
    world-to-camera (3, 3), ``P``, ``P0`` positions (3,). The heading is the angle of the camera's forward
    axis counter-clockwise from the map's x axis (90° = looking the way the first frame looks).
    """
    right, fwd0 = R0.T @ np.array([1.0, 0.0, 0.0]), R0.T @ np.array([0.0, 0.0, 1.0])
    d = np.asarray(P, dtype=np.float64) - P0
    f = np.asarray(R, dtype=np.float64).T @ np.array([0.0, 0.0, 1.0])
    heading = math.degrees(math.atan2(float(f @ fwd0), float(f @ right)))
    return [round(float(d @ right), 4), round(float(d @ fwd0), 4), round(heading, 2)]


@dataclass
class _Run:
    """Worker-side state of the current stream: frame count, map origin and playback schedule."""

    epoch: int
    origin: tuple[np.ndarray, np.ndarray]
    play_end: float                  # when the last scheduled frame is due (time.monotonic)
    block_s: float = 0.0             # playback duration of the last block
    n: int = 0


class Recorder:
    """The frames of a session -> an H.264 yuv420p mp4 (encoded in the worker thread by relic.video)."""

    def __init__(self, directory: Path, fps: float, max_frames: int):
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="relic-", suffix=".mp4", dir=directory)
        import os
        os.close(fd)
        self.path = Path(name)
        self.max_frames = max_frames
        self._writer = Mp4Writer(self.path, fps=fps).__enter__()

    @property
    def frames(self) -> int:
        return self._writer.frames_written

    def write(self, frames: np.ndarray) -> bool:
        """Append frames; returns False once the length limit is reached (the caller stops recording)."""
        room = self.max_frames - self.frames
        if room > 0:
            self._writer.write(frames[:room])
        return self.frames < self.max_frames

    def finish(self) -> Path:
        self._writer.__exit__(None, None, None)
        return self.path

    def discard(self) -> None:
        err = RuntimeError("recording discarded")
        try:
            self._writer.__exit__(RuntimeError, err, None)
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass
        self.path.unlink(missing_ok=True)


class Stream:
    """A streaming session bound to one WebSocket: worker thread + paced latest-frame-wins outbox.

    Created on the event loop; :meth:`run_sender` is awaited there, :meth:`stop` ends everything.
    ``register_recording(path) -> url`` stores a finished recording and returns its download URL.
    """

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop, cfg: ServeConfig,
                 register_recording: Callable[[Path], str], record_dir: Path, keymap: KeyMap = KeyMap()):
        self.engine = engine
        self.loop = loop
        self.cfg = cfg
        self.keymap = keymap
        self.register_recording = register_recording
        self.record_dir = record_dir
        self.fps = float(engine.fps)
        self._input = InputState()
        self._input_lock = threading.Lock()
        self._commands: queue.Queue = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._wake_worker = threading.Event()
        self._thread = threading.Thread(target=self._work, name="relic-play-worker", daemon=True)
        # event-loop side (only touched from the loop thread)
        self._texts: collections.deque[str] = collections.deque()
        self._slot: tuple[int, bytes] | None = None
        self._inflight: collections.deque[int] = collections.deque()
        self._seq = 0
        self._epoch = 0
        self._wake = asyncio.Event()
        self.finished = asyncio.Event()   # set when the worker thread has ended (stopped or failed)
        self.failed = False
        self.frames_sent = 0
        self.frames_dropped = 0

    # ---- called on the event loop -------------------------------------------------------------------
    def begin(self) -> None:
        self._thread.start()

    def command(self, cmd: tuple) -> bool:
        """Queue a control command for the worker; False if the queue is full (client is flooding)."""
        try:
            self._commands.put_nowait(cmd)
        except queue.Full:
            return False
        self._wake_worker.set()
        return True

    def update_input(self, msg: Input) -> None:
        with self._input_lock:
            s = self._input
            s.keys = msg.keys
            s.dx = float(np.clip(s.dx + msg.dx, -1e4, 1e4))
            s.dy = float(np.clip(s.dy + msg.dy, -1e4, 1e4))
            if msg.gamma is not None:
                s.gamma = msg.gamma
            if msg.t is not None:
                s.t = msg.t

    def ack(self, seq: int) -> None:
        while self._inflight and self._inflight[0] <= seq:
            self._inflight.popleft()
        self._wake.set()

    @property
    def texts_pending(self) -> int:
        return len(self._texts)

    def send_text(self, obj: dict, droppable: bool = False) -> None:
        """Queue a JSON text message. Droppable ones (error replies) are dropped when 32 are pending."""
        if droppable and len(self._texts) >= 32:
            return
        self._texts.append(json.dumps(obj))
        self._wake.set()

    async def run_sender(self, send_text, send_bytes) -> None:
        """Send queued texts and the latest frame, honouring the in-flight limit. Runs until cancelled."""
        while True:
            if self._texts:
                await send_text(self._texts.popleft())
                continue
            if self._slot is not None and len(self._inflight) < self.cfg.max_inflight_frames:
                seq, data = self._slot
                self._slot = None
                self._inflight.append(seq)
                await send_bytes(data)
                self.frames_sent += 1
                continue
            self._wake.clear()
            await self._wake.wait()

    def stop(self) -> None:
        self._stop.set()
        self._wake_worker.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _new_epoch(self, msg: dict | None) -> None:
        self._epoch += 1
        self._slot = None
        if msg is not None:
            self.send_text(msg)

    def _put_frame(self, epoch: int, header: dict, jpeg: bytes) -> None:
        if epoch != self._epoch:
            return  # a frame of a run that was reset or restarted
        self._seq += 1
        header["seq"] = self._seq
        if self._slot is not None:
            self.frames_dropped += 1
        self._slot = (self._seq, pack_frame(header, jpeg))
        self._wake.set()

    # ---- worker thread --------------------------------------------------------------------------------
    def _emit_text(self, obj: dict, droppable: bool = False) -> None:
        self.loop.call_soon_threadsafe(self.send_text, obj, droppable)

    def _work(self) -> None:
        try:
            self._loop_body()
        except Exception as e:  # noqa: BLE001 - reported to the client, logged with traceback
            log.exception("generation worker failed")
            self.failed = True
            self._emit_text({"type": "error", "code": "engine", "message": f"generation failed: {e}"})
        finally:
            if self._recorder is not None:
                self._recorder.discard()
                self._recorder = None
            self.loop.call_soon_threadsafe(self.finished.set)

    _recorder: Recorder | None = None

    def _loop_body(self) -> None:
        run: _Run | None = None          # the current stream (None before the first start)
        epoch = 0
        while not self._stop.is_set():
            while True:                  # control commands first
                try:
                    cmd = self._commands.get_nowait()
                except queue.Empty:
                    break
                if cmd[0] == "record":
                    self._record(cmd[1])
                    continue
                if cmd[0] == "start":
                    self.engine.start(*cmd[1:])
                elif run is None:
                    self._emit_text({"type": "error", "code": "not_started", "message": "press Start first"}, True)
                    continue
                else:
                    self.engine.reset()
                epoch += 1
                run = self._begin(epoch, "started" if cmd[0] == "start" else "reset")
            if run is None:
                self._wake_worker.wait(0.5)
                self._wake_worker.clear()
                continue
            # pacing: never more than one block ahead of playback
            wait = run.play_end - time.monotonic() - run.block_s
            if wait > 0:
                self._wake_worker.wait(wait)
                self._wake_worker.clear()
                continue  # re-check commands and stop first
            self._generate(run)

    def _begin(self, epoch: int, kind: str) -> "_Run":
        """A (re)started stream: announce it and show frame 0 (the first frame as the model decodes it)."""
        with self._input_lock:
            self._input.dx = self._input.dy = 0.0
            gamma = self._input.gamma
        mem = self.engine.memory_tokens()
        msg = {"type": kind, "width": self.engine.width, "height": self.engine.height, "fps": self.fps,
               "memory_tokens": mem}
        self.loop.call_soon_threadsafe(self._new_epoch, msg)
        R, P = self.engine.poses()
        run = _Run(epoch=epoch, origin=(R[0], P[0]), play_end=time.monotonic() + 1.0 / self.fps)
        header = {"n": 0, "t": None, "mem": mem, "pose": pose_summary(R[-1], P[-1], *run.origin), "gamma": gamma,
                  "block_ms": 0.0}
        jpeg = encode_jpeg(self.engine.first_frame(), self.cfg.jpeg_quality)
        self.loop.call_soon_threadsafe(self._put_frame, epoch, header, jpeg)
        return run

    def _generate(self, run: "_Run") -> None:
        """One block: latest input -> actions -> engine.step -> JPEGs scheduled at the frame rate."""
        with self._input_lock:
            s = self._input
            keys, dx, dy, gamma, t = s.keys, s.dx, s.dy, s.gamma, s.t
            s.dx = s.dy = 0.0
        f = self.engine.frames_per_step()
        per_frame = self.keymap.action_from_keys(list(keys), dx / f, dy / f)  # mouse spread over the block
        actions = np.repeat(per_frame[None], f, axis=0)
        t0 = time.perf_counter()
        frames = self.engine.step(actions, gamma)
        gen_ms = round((time.perf_counter() - t0) * 1000.0, 1)
        if self._stop.is_set():
            return
        if self._recorder is not None and not self._recorder.write(frames):
            self._record(False)
        R, P = self.engine.poses()
        mem = self.engine.memory_tokens()
        start_at = max(time.monotonic(), run.play_end)
        for i, frame in enumerate(frames):
            run.n += 1
            k = len(R) - len(frames) + i
            header = {"n": run.n, "t": t, "mem": mem, "pose": pose_summary(R[k], P[k], *run.origin),
                      "gamma": gamma, "block_ms": gen_ms}
            jpeg = encode_jpeg(frame, self.cfg.jpeg_quality)
            self.loop.call_soon_threadsafe(self._schedule, start_at + i / self.fps, run.epoch, header, jpeg)
        run.block_s = len(frames) / self.fps
        run.play_end = start_at + run.block_s

    def _schedule(self, due: float, epoch: int, header: dict, jpeg: bytes) -> None:
        delay = due - time.monotonic()
        if delay <= 0:
            self._put_frame(epoch, header, jpeg)
        else:
            self.loop.call_later(delay, self._put_frame, epoch, header, jpeg)

    def _record(self, on: bool) -> None:
        if on and self._recorder is not None:
            self._emit_text({"type": "recording", "on": True})
        elif on:
            max_frames = max(1, int(self.cfg.max_record_seconds * self.fps))
            self._recorder = Recorder(self.record_dir, self.fps, max_frames)
            self._emit_text({"type": "recording", "on": True})
        elif not on and self._recorder is None:
            self._emit_text({"type": "recording", "on": False, "url": None, "frames": 0, "message": "not recording"})
        elif not on:
            rec, self._recorder = self._recorder, None
            if rec.frames == 0:
                rec.discard()
                self._emit_text({"type": "recording", "on": False, "url": None, "frames": 0,
                                 "message": "nothing was recorded"})
                return
            frames = rec.frames
            path = rec.finish()
            url = self.register_recording(path)
            self._emit_text({"type": "recording", "on": False, "url": url, "frames": frames,
                             "seconds": round(frames / self.fps, 2)})
