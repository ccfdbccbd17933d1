"""Key map and action-script mini-language."""

import numpy as np
import pytest

from relic.camera import ACTION_INDEX, STATIC, ActionScriptError, KeyMap, parse_action_script


def test_script_example():
    a = parse_action_script("w*16 a+left*8 static*4 up*12")
    assert a.shape == (40, 13)
    assert (a[:16, ACTION_INDEX["dolly_in"]] == 1).all()
    assert (a[16:24, ACTION_INDEX["truck_left"]] == 1).all() and (a[16:24, ACTION_INDEX["pan_left"]] == 2).all()
    assert (a[24:28, STATIC] == 1).all() and (a[24:28, :STATIC] == 0).all()
    assert (a[28:, ACTION_INDEX["tilt_up"]] == 2).all()
    assert (a[:24, STATIC] == 0).all()


def test_script_names_magnitudes_and_opposites():
    a = parse_action_script("dolly_in:0.5*2 pan_right:3 w+s")
    assert a[0, ACTION_INDEX["dolly_in"]] == 0.5 and a[2, ACTION_INDEX["pan_right"]] == 3
    assert a[3, STATIC] == 1 and (a[3, :STATIC] == 0).all()  # w+s cancel


@pytest.mark.parametrize("script,pos,token", [
    ("w*4 jump*2", 4, "jump*2"), ("w*0", 0, "w*0"), ("w*x", 0, "w*x"), ("  w+ww", 2, "w+ww")])
def test_script_errors_name_token_and_position(script, pos, token):
    with pytest.raises(ActionScriptError) as e:
        parse_action_script(script)
    assert f"position {pos}" in str(e.value) and repr(token) in str(e.value)


def test_script_repeats_in_seconds_are_video_frames_at_fps():
    assert (parse_action_script("w*1s") == parse_action_script("w*16")).all()     # 16 FPS by default
    a = parse_action_script("w*2s left*0.5s static", fps=8)
    assert a.shape == (16 + 4 + 1, 13)
    assert (a[:16, ACTION_INDEX["dolly_in"]] == 1).all() and (a[16:20, ACTION_INDEX["pan_left"]] > 0).all()
    assert parse_action_script("w*.25s").shape == (4, 13)


@pytest.mark.parametrize("script,why", [("w*0.1s", "1.6 video frames at 16 FPS"), ("w*0s", "0 video frames"),
                                        ("w*1.5m", "expected *N video frames or *Ts seconds")])
def test_script_seconds_errors_say_why(script, why):
    with pytest.raises(ActionScriptError) as e:
        parse_action_script(script)
    assert why in str(e.value) and repr(script) in str(e.value) and "position 0" in str(e.value)


def test_empty_script():
    with pytest.raises(ActionScriptError):
        parse_action_script("   ")


def test_keymap_combines_and_mouse():
    km = KeyMap()
    a = km.action_from_keys({"w": True, "KeyD": True, "ArrowLeft": True, "s": False})
    assert a[ACTION_INDEX["dolly_in"]] == 1 and a[ACTION_INDEX["truck_right"]] == 1
    assert a[ACTION_INDEX["pan_left"]] == km.rotation_deg and a[STATIC] == 0
    a = km.action_from_keys([], mouse_dx=10, mouse_dy=-4)
    assert a[ACTION_INDEX["pan_right"]] == pytest.approx(1.5) and a[ACTION_INDEX["tilt_up"]] == pytest.approx(0.6)
    a = km.action_from_keys(["left"], mouse_dx=1000)
    assert a[ACTION_INDEX["pan_right"]] == pytest.approx(km.mouse_max_deg - km.rotation_deg)
    assert a[ACTION_INDEX["pan_left"]] == 0
    assert km.action_from_keys([])[STATIC] == 1
    with pytest.raises(ValueError, match="unknown key"):
        km.action_from_keys(["F13"])
    assert ("e", "pedestal_up") in km.table() and ("q", "pedestal_down") in km.table()
