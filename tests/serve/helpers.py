"""The play server running in-process (uvicorn in a thread on 127.0.0.1, free port) and test scenes."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from relic.serve.app import EnginePool, create_app, uvicorn_config
from relic.serve.engine import Engine
from relic.serve.limits import ServeConfig
from relic.serve.scenes import load_scenes


class ServerThread:
    """uvicorn serving ``app`` from a background thread; ``url`` / ``ws_url`` once started."""

    def __init__(self, app, cfg: ServeConfig):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, cfg))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def make_scene_dir(root: Path, width: int, height: int) -> Path:
    """Two small start scenes (coloured PNGs) with a scenes.json index."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (name, colour) in enumerate([("test-yard", (200, 120, 40)), ("test-hall", (40, 120, 200))]):
        a = np.zeros((height, width, 3), np.uint8)
        a[:] = colour
        a[height // 2:, :, :] //= 2
        Image.fromarray(a).save(root / f"{name}.png")
        entries.append({"name": name, "title": name.replace("-", " "), "prompt": f"a {name}", "seed": 1_000_000 + i,
                        "image": f"{name}.png"})
    (root / "scenes.json").write_text(json.dumps({"scenes": entries}))
    return root


def fake_server(sessions, cfg: ServeConfig, scene_dir: Path) -> ServerThread:
    pool = EnginePool([Engine(s) for s in sessions])
    return ServerThread(create_app(pool, cfg, load_scenes(scene_dir)), cfg)
