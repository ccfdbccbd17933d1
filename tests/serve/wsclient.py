"""A small synchronous WebSocket client speaking the play protocol (tests only)."""

from __future__ import annotations

import json
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from relic.serve.protocol import unpack_frame


class Client:
    def __init__(self, url: str, open_timeout: float = 20):
        self.ws = connect(url, max_size=2**22, open_timeout=open_timeout, close_timeout=2).__enter__()
        self.texts: list[dict] = []
        self.frames: list[dict] = []

    def recv(self, timeout: float = 10):
        """-> ("text", dict) or ("frame", header, jpeg)."""
        data = self.ws.recv(timeout=timeout)
        if isinstance(data, str):
            m = json.loads(data)
            self.texts.append(m)
            return ("text", m)
        header, jpeg = unpack_frame(data)
        self.frames.append(header)
        return ("frame", header, jpeg)

    def send(self, obj) -> None:
        self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def wait_text(self, kind: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m[0] == "text" and m[1]["type"] == kind:
                return m[1]
            if m[0] == "frame":
                self.ack(m[1])

    def next_frame(self, timeout: float = 20, ack: bool = True):
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m[0] == "frame":
                if ack:
                    self.ack(m[1])
                return m[1], m[2]

    def ack(self, header: dict) -> None:
        """Acknowledge a frame. Best effort: when the server has already closed (e.g. right after an error
        message), the ack is moot and the messages it sent before closing are still read by ``recv``."""
        try:
            self.send({"type": "ack", "n": header["seq"]})
        except ConnectionClosed:
            pass

    pending_hello = False

    def start(self, scene: str = "test-yard", prompt: str = "a test", **kw) -> dict:
        if not self.pending_hello:
            self.wait_text("hello")
        self.pending_hello = False
        self.send({"type": "start", "scene": scene, "prompt": prompt, **kw})
        return self.wait_text("started")

    def close(self) -> None:
        self.ws.close()


def connect_when_free(url: str, timeout: float = 20.0) -> Client:
    """A client that got a session (``hello``), retrying while the server answers ``busy``.

    A freed session comes back once its worker has finished the block it was generating.
    """
    deadline = time.monotonic() + timeout
    while True:
        c = Client(url)
        kind, m = c.recv()
        if m["type"] == "hello":
            c.texts.remove(m)
            c.pending_hello = True
            return c
        c.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"no free session within {timeout} s: {m}")
        time.sleep(0.05)
