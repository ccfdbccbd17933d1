"""Upload decoding and client-message validation (no server)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from relic.serve.images import ImageRejected, decode_image, encode_jpeg
from relic.serve.protocol import (Ack, Input, Limits, ProtocolError, Record, Reset, Start, pack_frame, parse_message,
                                  unpack_frame)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_decode_accepts_png_jpeg_webp_and_fits_model_size(fmt):
    # a 300x100 image with a left half red and right half blue: centre-crop keeps the middle
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, :150] = (255, 0, 0)
    a[:, 150:] = (0, 0, 255)
    kw = {} if fmt == "PNG" else {"quality": 95}
    out = decode_image(_encode(Image.fromarray(a), fmt, **kw), (64, 32), max_pixels=10**6)
    assert out.shape == (32, 64, 3) and out.dtype == np.uint8
    assert out[16, 4, 0] > 200 and out[16, 4, 2] < 60      # left: red
    assert out[16, 60, 2] > 200 and out[16, 60, 0] < 60    # right: blue


def test_decode_converts_grey_and_alpha_to_rgb():
    out = decode_image(_encode(Image.new("LA", (40, 40), (128, 200)), "PNG"), (20, 10), 10**6)
    assert out.shape == (10, 20, 3)
    assert np.all(out == 128)


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"%PDF-1.4\n" + b"0" * 100,
                                  b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_decode_rejects_non_images_and_corrupt_files(data):
    with pytest.raises(ImageRejected):
        decode_image(data, (64, 32), 10**6)


def test_decode_rejects_other_formats():
    for fmt in ("GIF", "BMP", "TIFF"):
        with pytest.raises(ImageRejected, match="PNG, JPEG or WebP"):
            decode_image(_encode(Image.new("RGB", (8, 8)), fmt), (8, 8), 10**6)


def test_decode_rejects_too_many_pixels_before_decoding():
    # a PNG header claiming 20000 x 20000 (400 MP), checked before any pixel is decoded
    big = _encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(big) < 200_000
    with pytest.raises(ImageRejected, match="limit"):
        decode_image(big, (64, 32), max_pixels=50_000_000)


def test_jpeg_roundtrip():
    a = np.full((16, 32, 3), 90, np.uint8)
    j = encode_jpeg(a)
    assert j[:2] == b"\xff\xd8"
    assert np.abs(np.asarray(Image.open(io.BytesIO(j))).astype(int) - 90).max() <= 2


def test_parse_valid_messages():
    m = parse_message(json.dumps({"type": "input", "keys": ["w", "ArrowLeft"], "dx": 3, "dy": -2.5, "gamma": 1.5,
                                  "t": 123.4}))
    assert m == Input(keys=("w", "arrowleft"), dx=3.0, dy=-2.5, gamma=1.5, t=123.4)
    assert parse_message('{"type":"ack","n":7}') == Ack(7)
    assert parse_message('{"type":"reset"}') == Reset()
    assert parse_message('{"type":"record","on":true}') == Record(True)
    assert parse_message('{"type":"start","scene":"yard","prompt":"  a yard ","seed":5}') == \
        Start(prompt="a yard", scene="yard", seed=5)


@pytest.mark.parametrize("text,code", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('{"type": "fly"}', "unknown_type"),
    ('{"keys": []}', "unknown_type"),
    ('{"type": "input", "keys": ["w"], "boost": 1}', "unknown_field"),
    ('{"type": "input", "keys": ["k"]}', "bad_key"),
    ('{"type": "input", "keys": "w"}', "bad_field"),
    ('{"type": "input", "keys": [1]}', "bad_key"),
    ('{"type": "input", "dx": "3"}', "bad_field"),
    ('{"type": "input", "dx": 1e308, "dy": 1e309}', "bad_field"),
    ('{"type": "input", "dx": NaN}', "bad_field"),
    ('{"type": "input", "gamma": 0}', "bad_field"),
    ('{"type": "input", "gamma": 100}', "bad_field"),
    ('{"type": "input", "t": true}', "bad_field"),
    ('{"type": "ack", "n": -1}', "bad_field"),
    ('{"type": "ack", "n": 1.5}', "bad_field"),
    ('{"type": "record", "on": 1}', "bad_field"),
    ('{"type": "start", "prompt": "x"}', "bad_field"),
    ('{"type": "start", "scene": "a", "upload": "b", "prompt": "x"}', "bad_field"),
    ('{"type": "start", "scene": "a", "prompt": 5}', "bad_field"),
    ('{"type": "start", "scene": "a", "prompt": "x", "seed": -1}', "bad_field"),
    ('{"type": "start", "scene": "a", "prompt": "' + "p" * 501 + '"}', "prompt_too_long"),
    ("[" * 3000 + "]" * 3000, "too_large"),
    ('{"type": "input", "keys": [' + ",".join(['"w"'] * 17) + "]}", "bad_field"),
])
def test_parse_rejects_malformed_messages(text, code):
    with pytest.raises(ProtocolError) as e:
        parse_message(text, Limits(max_message_bytes=4096, max_prompt_chars=500))
    assert e.value.code == code
    reply = e.value.reply()
    assert reply["type"] == "error" and reply["code"] == code and reply["message"]


def test_parse_rejects_binary_and_deep_nesting():
    with pytest.raises(ProtocolError, match="binary"):
        parse_message(b"\x00\x01")
    with pytest.raises(ProtocolError):
        parse_message("[" * 2000 + "]" * 2000, Limits(max_message_bytes=10**6))


def test_frame_packing_roundtrip():
    data = pack_frame({"n": 3, "t": 1.5, "pose": [0.0, 1.0, 90.0]}, b"\xff\xd8jpeg")
    header, jpeg = unpack_frame(data)
    assert header == {"n": 3, "t": 1.5, "pose": [0.0, 1.0, 90.0]} and jpeg == b"\xff\xd8jpeg"


def test_pose_summary_is_relative_to_the_first_view():
    from relic.camera import integrate, look_at, parse_action_script
    from relic.serve.stream import pose_summary

    a = parse_action_script("static w*10 left*45")   # forward, then turn left 90 degrees
    for R0, P0 in [(np.eye(3), np.zeros(3)),                                  # the session's own frame
                   (look_at((1.0, 2.0, 1.5), (1.0, 5.0, 1.5)), np.array([1.0, 2.0, 1.5]))]:  # a Z-up world
        R, P = integrate(a, 0.5, 1.0, R0, P0)
        assert pose_summary(R[0], P[0], R[0], P[0]) == [0.0, 0.0, 90.0]
        x, y, heading = pose_summary(R[10], P[10], R[0], P[0])
        assert abs(x) < 1e-6 and y == pytest.approx(5.0) and heading == pytest.approx(90.0)
        x, y, heading = pose_summary(R[-1], P[-1], R[0], P[0])
        assert heading == pytest.approx(180.0, abs=0.01) or heading == pytest.approx(-180.0, abs=0.01)
