"""The curation filters on the procedural world's clips: clean clips pass, and every defect the world
generator can inject (relic.world.defects) is caught by its filter, on the frames where it was injected."""

import pytest

from relic.data.filters import FilterConfig, decide, run_filters

world = pytest.importorskip("relic.world")

# 6-s clips: at shorter durations the world operator currently squeezes its revisits (turn-backs at
# 300-750 deg/s), which the filters rightly flag; see docs/data.md.
SIZE, SECONDS = (96, 64), 6.0

# defect option of the world generator -> the filter that must catch it
MATCHING = {
    "jitter": "jitter",
    "abrupt_rotation": "abrupt_rotation",
    "fast_pan": "pan_speed",
    "overexposure": "exposure",
    "underexposure": "exposure",
    "frozen": "frozen",
}


def render(seed, defects=()):
    return world.render_clip(seed=seed, seconds=SECONDS, size=SIZE, fps=16, defects=defects, depth=True)


@pytest.mark.slow
def test_clean_world_clips_pass():
    for seed in range(8):
        clip = render(seed)
        findings = run_filters(clip.trajectory, clip.frames, clip.depth)
        assert findings == [], (seed, [(f.name, f.reason) for f in findings])


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(MATCHING))
def test_world_defects_are_caught(defect):
    assert set(MATCHING) == set(world.DEFECTS)
    for seed in (0, 1):
        clip = render(seed, (defect,))
        record = next(d for d in clip.meta["defects"] if d["kind"] == defect)
        a, b = record["frames"]
        findings = {f.name: f for f in run_filters(clip.trajectory, clip.frames, clip.depth)}
        name = MATCHING[defect]
        assert name in findings, (seed, defect, {k: f.reason for k, f in findings.items()})
        flagged = set(findings[name].frames)
        cfg = FilterConfig()
        margin = cfg.jitter_rms_window // 2 + 1 if name == "jitter" else 1   # the RMS window spreads jitter
        assert flagged & set(range(a, b + 2)), (seed, defect, a, b, sorted(flagged))   # on the defect
        assert flagged <= set(range(a - margin, b + 1 + margin)), (seed, defect, a, b, sorted(flagged))  # only there
        if name == "exposure":                  # the whole brightened / darkened run, not just its edges
            assert set(range(a, b + 1)) <= flagged
            v = decide("c", len(clip.frames), list(findings.values()), cfg)
            assert all(e <= a or s > b for s, e in v.segments)
