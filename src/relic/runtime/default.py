"""Which model the apps (``relic play``, ``relic generate``, ``relic eval``) use when none is named.

Order: ``$RELIC_MODEL`` (a model directory or preset name), else the shipped ``weights/relic-tiny`` of a
source checkout (docs/model-card.md), else the ``relic-tiny`` preset with random weights (a clear fallback
for installs without the weights, never a silent download).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the shipped default model of a source checkout (the repository's weights/relic-tiny)
REPO_MODEL = Path(__file__).resolve().parents[3] / "weights" / "relic-tiny"

#: what the commands' --help says about the default (``--model``)
DEFAULT_MODEL_HELP = ("default: $RELIC_MODEL, else the shipped weights/relic-tiny (docs/model-card.md), else the "
                      "relic-tiny preset with random weights")


def default_model() -> str:
    """$RELIC_MODEL, else the shipped ``weights/relic-tiny`` (if it has a config.json), else ``relic-tiny``."""
    env = os.environ.get("RELIC_MODEL")
    if env:
        return env
    if (REPO_MODEL / "config.json").is_file():
        return str(REPO_MODEL)
    return "relic-tiny"
