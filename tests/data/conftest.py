import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def clip_root(tmp_path_factory):
    """Three synthetic operator clips (49, 57 and 41 frames, 64x96) in the clip directory format."""
    from synth import synth_clip

    from relic.data.clips import write_clip

    root = tmp_path_factory.mktemp("clips")
    for seed, T in ((0, 49), (1, 57), (2, 41)):
        frames, traj, _, _ = synth_clip(T=T, seed=seed)
        write_clip(root / f"clip_{seed:03d}", frames, traj, "The camera slowly pans left across a red wall",
                   meta={"seed": seed, "defects": []})
    return root
