"""The world benchmark runs and reports the documented fields (speed itself is not asserted here)."""

from relic.world.bench import run


def test_bench_reports_fields():
    out = run(sizes=(16,), seconds=0.5, clips=1, workers=1)
    (res,) = out["results"]
    assert res["size"] == 16 and res["frames"] == 8
    for key in ("fps_render", "fps", "cpu_ms_per_frame"):
        assert res[key] > 0
    assert out["machine"]["cpus"] >= 1
