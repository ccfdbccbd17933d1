"""Caption motion suppression (§3.3): camera motion goes, everything else stays."""

import pytest

from relic.data.captions import suppress_motion

REWRITTEN = [
    ("The camera slowly pans left across a red wall", "A red wall"),
    ("A cozy living room, the camera pans right to reveal a fireplace", "A cozy living room, a fireplace"),
    ("A dolly shot of a kitchen with white cabinets", "A kitchen with white cabinets"),
    ("moving forward through a narrow corridor, lamps on the walls", "a narrow corridor, lamps on the walls"),
    ("zooming in on a vase of flowers", "a vase of flowers"),
    ("The camera tilts up to show the ceiling and then zooms out.", "The ceiling."),
    ("tracking shot following a red bus", "a red bus"),
    ("We are walking forward down a hallway with paintings", "A hallway with paintings"),
    ("A sunny courtyard. The camera moves forward.", "A sunny courtyard."),
    ("The view rotates clockwise over a field of tulips", "A field of tulips"),
    ("aerial drone footage of a beach", "a beach"),
    ("a stone bridge, camera panning from left to right", "a stone bridge"),
    ("The camera is moving backward past old trees", "Old trees"),
    ("tracking left past a fence", "a fence"),
    ("A quiet library. The camera dollies in towards a wooden desk.", "A quiet library. A wooden desk."),
    ("camera movement: slow pan left", ""),
    ("The camera pans left.", ""),
]

KEPT = [
    "a panel on the left",
    "a car moving forward on a road",          # object motion, not camera motion
    "people walking along the street",
    "a dog turns left at the corner",
    "a frying pan on the stove",
    "train tracks in a field",
    "a panoramic view of mountains",
    "a camera on a tripod",
    "a zoom lens on a table",
    "An aerial view of a city at night",
    "a red brick house with a green door, ivy on the right",
    "Moving boxes stacked in a garage",        # an adjective, not a clause about moving
]


@pytest.mark.parametrize("caption,expected", REWRITTEN)
def test_camera_motion_is_removed(caption, expected):
    assert suppress_motion(caption) == expected


@pytest.mark.parametrize("caption", KEPT)
def test_everything_else_is_kept_verbatim(caption):
    assert suppress_motion(caption) == caption


def test_idempotent_and_empty():
    for caption, _ in REWRITTEN:
        once = suppress_motion(caption)
        assert suppress_motion(once) == once
    assert suppress_motion("") == ""
    assert suppress_motion("   ") == ""
