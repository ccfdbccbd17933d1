"""Server mechanics on a tiny deterministic fake engine: protocol, limits, latest-frame-wins, clean-up.

The engine here is tests/serve/fake_session.py; tests/serve/test_browser.py drives the real
StreamingSession through Chromium.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from relic.serve.limits import ServeConfig
from relic.video import read_video

from .helpers import fake_server
from .fake_session import FakeSession
from .wsclient import Client, connect_when_free


def _get(url: str):
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.status, r.headers.get("content-type"), r.read()


def _post(url: str, data: bytes, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _post_raw(port: int, header: str, parts: list[bytes]):
    """POST to /api/upload over a raw socket; the server may answer (and close) before the body is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"POST /api/upload HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n".encode())
        try:
            for p in parts:
                s.sendall(p)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _png(w=100, h=80, colour=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_page_info_scenes_and_static_files(scene_dir):
    with fake_server([FakeSession()], ServeConfig(max_sessions=1), scene_dir) as srv:
        status, ctype, body = _get(srv.url + "/")
        assert status == 200 and "text/html" in ctype and b'<canvas id="view"' in body
        for f in ("app.js", "style.css"):
            assert _get(f"{srv.url}/static/{f}")[0] == 200
        info = json.loads(_get(srv.url + "/api/info")[2])
        assert (info["width"], info["height"], info["fps"]) == (64, 32, 16.0)
        assert ["w", "dolly_in"] in info["keymap"] and info["sessions"] == {"max": 1, "active": 0}
        scenes = json.loads(_get(srv.url + "/api/scenes")[2])
        assert [s["name"] for s in scenes] == ["test-yard", "test-hall"]
        status, ctype, png = _get(srv.url + scenes[0]["thumbnail"])
        assert ctype == "image/png" and Image.open(io.BytesIO(png)).size == (64, 32)
        with pytest.raises(urllib.error.HTTPError):
            _get(srv.url + "/api/scenes/..%2Fscenes.png")


def test_uploads_are_checked(scene_dir):
    cfg = ServeConfig(max_sessions=1)
    with fake_server([FakeSession()], cfg, scene_dir) as srv:
        status, body = _post(srv.url + "/api/upload", _png(), {"Content-Type": "image/png"})
        assert status == 200 and (body["width"], body["height"]) == (64, 32)
        status, body = _post(srv.url + "/api/upload", b"#!/bin/sh\necho not an image\n")
        assert status == 415 and "PNG, JPEG or WebP" in body["error"]
        gif = io.BytesIO()
        Image.new("RGB", (8, 8)).save(gif, format="GIF")
        assert _post(srv.url + "/api/upload", gif.getvalue())[0] == 415
        # oversized: a PNG padded past 10 MB is refused (413) from its Content-Length, before reading the body
        big = _png() + b"\0" * (cfg.max_upload_bytes + 1)
        status, body = _post_raw(srv.port, f"Content-Length: {len(big)}", [big])
        assert status == 413 and "10 MB" in body["error"]
        # the same without a Content-Length (chunked): the stream is cut at the limit
        chunk = b"\0" * (1024 * 1024)
        status, body = _post_raw(srv.port, "Transfer-Encoding: chunked",
                                 [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 11 + [b"0\r\n\r\n"])
        assert status == 413 and "10 MB" in body["error"]
        # an upload starts a session
        status, body = _post(srv.url + "/api/upload", _png(colour=(250, 0, 0)))
        c = Client(srv.ws_url)
        c.wait_text("hello")
        c.send({"type": "start", "upload": body["id"], "prompt": "red"})
        c.wait_text("started")
        header, jpeg = c.next_frame()
        assert header["n"] == 0
        first = np.asarray(Image.open(io.BytesIO(jpeg)))
        assert first.shape == (32, 64, 3) and first[..., 0].mean() > 200 and first[..., 1].mean() < 40
        c.close()


def test_stream_frames_poses_latency_echo_and_reset(scene_dir):
    sess = FakeSession()
    with fake_server([sess], ServeConfig(max_sessions=1), scene_dir) as srv:
        c = Client(srv.ws_url)
        started = c.start(prompt="a yard")
        assert (started["width"], started["height"]) == (64, 32)
        assert sess.prompt == "a yard"
        h0, _ = c.next_frame()
        assert h0["n"] == 0 and h0["t"] is None
        c.send({"type": "input", "keys": ["w"], "dx": 0, "dy": 0, "gamma": 2.0, "t": 4242.5})
        seen = [c.next_frame()[0] for _ in range(12)]
        assert [h["n"] for h in seen] == sorted(h["n"] for h in seen)
        echoed = [h for h in seen if h["t"] == 4242.5]
        assert echoed, "the client timestamp must be echoed"
        assert all(h["gamma"] == 2.0 for h in echoed)
        # W moved the camera forward: up the minimap (its y axis is the first view's forward)
        assert h0["pose"] == [0.0, 0.0, 90.0]
        assert echoed[-1]["pose"][1] > 0.1 and abs(echoed[-1]["pose"][0]) < 1e-6
        assert echoed[-1]["mem"] > 0
        c.send({"type": "reset"})
        c.wait_text("reset")
        h, _ = c.next_frame()
        assert h["n"] == 0 and h["pose"] == h0["pose"]
        c.close()
        assert sess.max_concurrent == 1


def test_latest_frame_wins_slow_client_drops_frames(scene_dir):
    cfg = ServeConfig(max_sessions=1, max_inflight_frames=2)
    with fake_server([FakeSession()], cfg, scene_dir) as srv:
        c = Client(srv.ws_url)
        c.start()
        got = [c.next_frame(ack=False)[0] for _ in range(2)]
        # two frames in flight and none acknowledged: the server sends nothing more, it does not queue
        with pytest.raises(TimeoutError):
            c.next_frame(timeout=0.5, ack=False)
        (stream,) = srv.app.state.streams
        deadline = time.monotonic() + 20
        while stream.frames_dropped < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.frames_sent == 2 and stream.frames_dropped >= 3
        c.ack(got[-1])
        h, _ = c.next_frame(ack=True)
        # the frames generated meanwhile were dropped; the newest one was sent
        assert h["n"] >= got[-1]["n"] + 4
        c.close()


def test_malformed_and_oversized_messages_get_errors_not_crashes(scene_dir):
    cfg = ServeConfig(max_sessions=2, max_message_bytes=4096, ws_max_size=64 * 1024)
    with fake_server([FakeSession(), FakeSession()], cfg, scene_dir) as srv:
        good = Client(srv.ws_url)
        good.start()
        good.next_frame()
        bad = Client(srv.ws_url)
        bad.wait_text("hello")
        for msg, code in [("{{{", "bad_json"), ('{"type":"teleport"}', "unknown_type"), (b"\x00\xff", "binary"),
                          ('{"type":"input","keys":["F13"]}', "bad_key"), ("x" * 5000, "too_large"),
                          ('{"type":"reset"}', "not_started"), ('{"type":"start","scene":"nowhere","prompt":""}',
                                                               "unknown_scene"),
                          ('{"type":"start","upload":"nope","prompt":""}', "unknown_upload")]:
            bad.send(msg)
            m = bad.wait_text("error")
            assert m["code"] == code, (msg, m)
            good.next_frame()
        # still usable after all that
        bad.send({"type": "start", "scene": "test-hall", "prompt": "hall"})
        bad.wait_text("started")
        bad.next_frame()
        # a message beyond the protocol limit closes only that socket (1009)
        bad.send("y" * (100 * 1024))
        with pytest.raises(ConnectionClosed) as e:
            for _ in range(100):
                bad.recv(timeout=10)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
        n0 = good.next_frame()[0]["n"]
        assert good.next_frame()[0]["n"] > n0


def test_fifty_clients_at_once_are_bounded_by_the_session_limit(scene_dir):
    cfg = ServeConfig(max_sessions=2)
    with fake_server([FakeSession(), FakeSession()], cfg, scene_dir) as srv:
        good = Client(srv.ws_url)
        good.start()
        good.next_frame()
        results: list = [None] * 50
        barrier = threading.Barrier(50)

        def rush(i):
            try:
                barrier.wait(20)
                ws = connect(srv.ws_url, open_timeout=30, close_timeout=2).__enter__()
                first = json.loads(ws.recv(timeout=30))
                code = None
                if first["type"] == "busy":
                    try:
                        ws.recv(timeout=30)
                    except ConnectionClosed as e:
                        code = e.rcvd.code if e.rcvd else None
                else:
                    time.sleep(0.5)
                ws.close()
                results[i] = (first["type"], first.get("message", ""), code)
            except Exception as e:  # noqa: BLE001
                results[i] = ("exception", repr(e), None)

        threads = [threading.Thread(target=rush, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        n_before = good.frames[-1]["n"]
        while any(t.is_alive() for t in threads):
            good.next_frame()  # the good client keeps being served while the crowd arrives
        for t in threads:
            t.join()
        kinds = [r[0] for r in results]
        assert kinds.count("hello") <= 1 and kinds.count("exception") == 0, results
        assert kinds.count("busy") >= 49
        assert all("in use" in r[1] and r[2] == 1013 for r in results if r[0] == "busy")
        assert good.next_frame()[0]["n"] > n_before
        # after the crowd leaves, the second slot is free again
        connect_when_free(srv.ws_url).close()


def test_vanishing_client_frees_its_session(scene_dir):
    sessions = [FakeSession(), FakeSession()]
    with fake_server(sessions, ServeConfig(max_sessions=2), scene_dir) as srv:
        good = Client(srv.ws_url)
        good.start()
        gone = Client(srv.ws_url)
        gone.start()
        gone.send({"type": "input", "keys": ["w", "left"], "t": 1.0})
        while gone.next_frame()[0]["n"] < 5:
            pass
        third = Client(srv.ws_url)
        assert third.recv()[1]["type"] == "busy"
        # vanish: drop the TCP connection without a closing handshake, mid-stream
        sock = gone.ws.socket
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        good.next_frame()
        c = connect_when_free(srv.ws_url)
        c.send({"type": "start", "scene": "test-yard", "prompt": "again"})
        c.wait_text("started")
        c.next_frame()
        assert good.next_frame()[0]["n"] > 0
        assert srv.app.state.pool.active == 2
        c.close()
        good.close()
        deadline = time.monotonic() + 20
        while srv.app.state.pool.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.app.state.pool.active == 0
        assert [s.max_concurrent for s in sessions] == [1, 1]  # one worker per engine at a time


def test_start_timeout_frees_the_slot(scene_dir):
    with fake_server([FakeSession()], ServeConfig(max_sessions=1, start_timeout_s=0.5), scene_dir) as srv:
        idle = Client(srv.ws_url)
        idle.wait_text("hello")
        with pytest.raises(ConnectionClosed) as e:
            idle.recv(timeout=20)
        assert e.value.rcvd.code == 1008
        c = connect_when_free(srv.ws_url)
        c.start()
        c.close()


def test_record_downloads_h264_mp4(scene_dir, tmp_path):
    with fake_server([FakeSession()], ServeConfig(max_sessions=1), scene_dir) as srv:
        c = Client(srv.ws_url)
        c.start()
        c.send({"type": "record", "on": False})
        assert c.wait_text("recording")["url"] is None  # nothing recorded yet
        c.send({"type": "record", "on": True})
        assert c.wait_text("recording")["on"] is True
        for _ in range(10):
            c.next_frame()
        c.send({"type": "record", "on": False})
        m = c.wait_text("recording")
        assert m["frames"] >= 8 and m["url"].endswith(".mp4")
        status, ctype, data = _get(srv.url + m["url"])
        assert ctype == "video/mp4"
        (tmp_path / "rec.mp4").write_bytes(data)
        video = read_video(tmp_path / "rec.mp4")
        assert video.shape == (m["frames"], 32, 64, 3)
        import av
        with av.open(str(tmp_path / "rec.mp4")) as f:
            s = f.streams.video[0]
            assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        c.close()


def test_engine_failure_is_reported_and_the_slot_comes_back(scene_dir):
    sess = FakeSession(fail_after=1)
    with fake_server([sess], ServeConfig(max_sessions=1), scene_dir) as srv:
        c = Client(srv.ws_url)
        c.start()
        m = c.wait_text("error")
        assert m["code"] == "engine" and "exploded" in m["message"]
        with pytest.raises(ConnectionClosed) as e:
            while True:
                c.recv(timeout=20)
        assert e.value.rcvd.code == 1011
        sess.fail_after = None
        c = connect_when_free(srv.ws_url)
        c.start()
        c.next_frame()
        c.close()


def test_cross_origin_sockets_are_refused(scene_dir):
    with fake_server([FakeSession()], ServeConfig(max_sessions=1), scene_dir) as srv:
        with connect(srv.ws_url, origin="http://evil.example", open_timeout=20) as ws:
            assert json.loads(ws.recv(timeout=20))["code"] == "origin"
            with pytest.raises(ConnectionClosed) as e:
                ws.recv(timeout=20)
            assert e.value.rcvd.code == 1008
        with connect(srv.ws_url, origin=srv.url, open_timeout=20) as ws:
            assert json.loads(ws.recv(timeout=20))["type"] == "hello"
