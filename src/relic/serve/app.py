"""The FastAPI app of ``relic play``: static page, start scenes, uploads, recordings and the WebSocket.

:func:`create_app` builds the app around an :class:`EnginePool` of warmed-up engines (one per allowed
concurrent session). :func:`uvicorn_config` gives the matching uvicorn settings (the WebSocket size limit).
The protocol is described in :mod:`relic.serve.protocol`, the threading in :mod:`relic.serve.stream`.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import logging
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from relic.camera import KeyMap
from relic.serve.engine import Engine
from relic.serve.images import ImageRejected, decode_image
from relic.serve.limits import ServeConfig
from relic.serve.protocol import GAMMA_RANGE, Ack, Input, Limits, ProtocolError, Record, Reset, Start, parse_message
from relic.serve.scenes import StartScene, load_scenes
from relic.serve.stream import Stream

log = logging.getLogger("relic.serve")
STATIC_DIR = Path(__file__).parent / "static"
WS_BUSY = 1013   # "try again later"


class EnginePool:
    """Warmed-up engines, one per allowed concurrent session. Used only from the event loop thread."""

    def __init__(self, engines: list[Engine]):
        if not engines:
            raise ValueError("an EnginePool needs at least one engine")
        self._free = list(engines)
        self.size = len(engines)
        e = engines[0]
        self.width, self.height, self.fps = e.width, e.height, e.fps

    @property
    def active(self) -> int:
        return self.size - len(self._free)

    def acquire(self) -> Engine | None:
        return self._free.pop() if self._free else None

    def release(self, engine: Engine) -> None:
        self._free.append(engine)


class _Recordings:
    """Finished recordings kept for download (bounded; the oldest file is deleted first). Thread-safe."""

    def __init__(self, directory: Path, keep: int):
        self.dir = directory
        self.keep = keep
        self._files: collections.OrderedDict[str, Path] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, path: Path) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._files[token] = path
            while len(self._files) > self.keep:
                _, old = self._files.popitem(last=False)
                old.unlink(missing_ok=True)
        return f"/api/recordings/{token}.mp4"

    def get(self, token: str) -> Path | None:
        with self._lock:
            return self._files.get(token)


def create_app(pool: EnginePool, cfg: ServeConfig = ServeConfig(), scenes: list[StartScene] | None = None,
               keymap: KeyMap = KeyMap()) -> FastAPI:
    """The play server. ``scenes`` defaults to the bundled start scenes (relic/assets/start_scenes)."""
    scenes = load_scenes() if scenes is None else scenes
    scene_by_name = {s.name: s for s in scenes}
    limits = Limits(max_message_bytes=cfg.max_message_bytes, max_prompt_chars=cfg.max_prompt_chars)
    size = (pool.width, pool.height)
    uploads: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    work_dir = Path(tempfile.mkdtemp(prefix="relic-play-"))
    atexit.register(shutil.rmtree, work_dir, True)   # also when the app is never served
    recordings = _Recordings(work_dir / "recordings", cfg.max_recordings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    app = FastAPI(title="relic play", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.pool = pool
    app.state.streams = set()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info")
    async def info():
        return {"width": pool.width, "height": pool.height, "fps": pool.fps,
                "keymap": [list(row) for row in keymap.table()], "gamma_range": list(GAMMA_RANGE),
                "sessions": {"max": pool.size, "active": pool.active},
                "limits": {"max_upload_bytes": cfg.max_upload_bytes, "max_prompt_chars": cfg.max_prompt_chars,
                           "max_message_bytes": cfg.max_message_bytes, "formats": ["png", "jpeg", "webp"]}}

    @app.get("/api/scenes")
    async def list_scenes():
        return [{"name": s.name, "title": s.title, "prompt": s.prompt, "seed": s.seed,
                 "thumbnail": f"/api/scenes/{s.name}.png"} for s in scenes]

    @app.get("/api/scenes/{name}.png")
    async def scene_image(name: str):
        s = scene_by_name.get(name)
        if s is None:
            return JSONResponse({"error": f"unknown scene {name[:64]!r}"}, status_code=404)
        return FileResponse(s.image_path, media_type="image/png")

    @app.post("/api/upload")
    async def upload(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cfg.max_upload_bytes):
            return JSONResponse({"error": f"upload larger than {cfg.max_upload_bytes // (1024 * 1024)} MB"},
                                status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_upload_bytes:
                return JSONResponse({"error": f"upload larger than {cfg.max_upload_bytes // (1024 * 1024)} MB"},
                                    status_code=413)
        try:
            image = await asyncio.to_thread(decode_image, bytes(body), size, cfg.max_image_pixels)
        except ImageRejected as e:
            return JSONResponse({"error": str(e)}, status_code=415)
        token = secrets.token_urlsafe(12)
        uploads[token] = image
        while len(uploads) > cfg.max_uploads:
            uploads.popitem(last=False)
        return {"id": token, "width": image.shape[1], "height": image.shape[0]}

    @app.get("/api/recordings/{token}.mp4")
    async def recording(token: str):
        path = recordings.get(token)
        if path is None or not path.is_file():
            return JSONResponse({"error": "no such recording"}, status_code=404)
        return FileResponse(path, media_type="video/mp4", filename="relic-play.mp4")

    def _start_image(msg: Start) -> np.ndarray:
        if msg.scene is not None:
            s = scene_by_name.get(msg.scene)
            if s is None:
                raise ProtocolError("unknown_scene", f"unknown scene {msg.scene!r}")
            try:
                return decode_image(s.image_path.read_bytes(), size, cfg.max_image_pixels)
            except (OSError, ImageRejected) as e:
                raise ProtocolError("bad_scene", f"scene {msg.scene!r} cannot be read: {e}") from None
        image = uploads.get(msg.upload)
        if image is None:
            raise ProtocolError("unknown_upload", "unknown or expired upload id; upload the image again")
        return image

    @app.websocket("/ws")
    async def play_socket(ws: WebSocket):
        await ws.accept()
        origin = ws.headers.get("origin")
        if origin and urlsplit(origin).netloc != ws.headers.get("host"):
            # another web site trying to drive this server from a visitor's browser
            await ws.send_json({"type": "error", "code": "origin", "message": "cross-origin connections are refused"})
            await ws.close(code=1008, reason="cross-origin")
            return
        engine = pool.acquire()
        if engine is None:
            await ws.send_json({"type": "busy", "message": f"all {pool.size} session(s) are in use; "
                                                           "try again in a moment"})
            await ws.close(code=WS_BUSY, reason="busy")
            return
        loop = asyncio.get_running_loop()
        stream = Stream(engine, loop, cfg, recordings.add, recordings.dir, keymap)
        app.state.streams.add(stream)
        stream.send_text({"type": "hello", "width": pool.width, "height": pool.height, "fps": pool.fps,
                          "keymap": [list(r) for r in keymap.table()], "gamma_range": list(GAMMA_RANGE)})
        stream.begin()
        sender = asyncio.create_task(stream.run_sender(ws.send_text, ws.send_bytes))
        finished = asyncio.ensure_future(stream.finished.wait())
        started = False
        try:
            while True:
                timeout = None if started else cfg.start_timeout_s
                receive = asyncio.ensure_future(ws.receive())
                done, _ = await asyncio.wait({receive, sender, finished}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if sender in done:       # sending failed: the client is gone
                    receive.cancel()
                    break
                if finished in done:     # the worker failed; its error message is queued
                    receive.cancel()
                    await _drain(stream, ws)
                    await ws.close(code=1011, reason="generation failed")
                    break
                if receive not in done:  # no start within the timeout
                    receive.cancel()
                    await ws.close(code=1008, reason="no start message")
                    break
                message = receive.result()
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    msg = parse_message(message.get("text") if message.get("text") is not None
                                        else message.get("bytes"), limits)
                    if isinstance(msg, Input):
                        stream.update_input(msg)
                    elif isinstance(msg, Ack):
                        stream.ack(msg.n)
                    elif isinstance(msg, Start):
                        image = await asyncio.to_thread(_start_image, msg) if msg.scene else _start_image(msg)
                        seed = msg.seed if msg.seed is not None else secrets.randbelow(2**31)
                        if not stream.command(("start", image, msg.prompt, seed)):
                            raise ProtocolError("flood", "too many commands; slow down")
                        started = True
                    elif isinstance(msg, (Reset, Record)):
                        if not started:
                            raise ProtocolError("not_started", "send 'start' first")
                        cmd = ("reset",) if isinstance(msg, Reset) else ("record", msg.on)
                        if not stream.command(cmd):
                            raise ProtocolError("flood", "too many commands; slow down")
                except ProtocolError as e:
                    stream.send_text(e.reply(), droppable=True)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            finished.cancel()
            stream.stop()
            app.state.streams.discard(stream)
            # the worker finishes at most its current block; then the engine is free for the next client
            await asyncio.to_thread(stream.join)
            try:
                await asyncio.to_thread(engine.clear)
            except Exception:  # noqa: BLE001 - a failed engine is restarted by its next start()
                log.exception("clearing the engine failed")
            pool.release(engine)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    return app


async def _drain(stream: Stream, ws: WebSocket, timeout: float = 10.0) -> None:
    """Give the sender a moment to flush queued text messages (e.g. the error) before closing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while stream.texts_pending and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def uvicorn_config(app: FastAPI, host: str = "127.0.0.1", port: int = 7860, cfg: ServeConfig = ServeConfig(),
                   log_level: str = "warning"):
    """uvicorn settings for the play server (WebSocket frame limit from ``cfg``)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, ws_max_size=cfg.ws_max_size, log_level=log_level,
                          ws_ping_interval=20.0, ws_ping_timeout=20.0, lifespan="on")
