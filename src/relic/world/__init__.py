"""The procedural 3D world: the stand-in for the paper's Unreal Engine dataset (paper §3.1-3.4).

* :mod:`relic.world.textures`: brick, tiles, wood, noise, stripes.
* :mod:`relic.world.geometry`: meshes and colliders.
* :mod:`relic.world.scenes`: indoor and outdoor scene families with captions and landmarks.
* :mod:`relic.world.renderer`: moderngl on headless EGL, relic's exact camera model.
* :mod:`relic.world.operator`: the simulated operator (smooth, collision-free, balanced actions, revisits).
* :mod:`relic.world.defects`: defect injection for the data filters.
* :mod:`relic.world.writer`: :func:`render_clip`, :func:`write_clip`, :func:`render_dataset`.
"""

from relic.world.defects import DEFECTS
from relic.world.writer import Clip, clip_seed, is_complete, parse_size, render_clip, render_dataset, write_clip

__all__ = ["DEFECTS", "Clip", "clip_seed", "is_complete", "parse_size", "render_clip", "render_dataset",
           "write_clip"]
