"""The trained relic-tiny autoencoder keeps the world's colours (issue: the first one turned everything sepia).

Checks on the committed stage weights (weights/stages/vae_pooled, weights/stages/tiny_decoder_pooled), with both
decoders: every flat primary and material-palette colour round-trips within 12 levels per channel, and the mean
HSV saturation of reconstructed held-out frames stays within 0.9-1.1 of the ground truth. The same checks are
run on the previous autoencoder (the Wan-arch VAE of rounds 1-5, weights/stages/vae with its tiny decoder
weights/stages/tiny_decoder) and must fail there: a check that cannot fail is no gate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from relic.eval import autoencoder as ae

ROOT = Path(__file__).resolve().parents[2]
STAGE_VAE = ROOT / "weights" / "stages" / "vae_pooled"
STAGE_TINY = ROOT / "weights" / "stages" / "tiny_decoder_pooled"
PREVIOUS_VAE = ROOT / "weights" / "stages" / "vae"             # the sepia one (rounds 1-5)
PREVIOUS_TINY = ROOT / "weights" / "stages" / "tiny_decoder"


def _codec(which: str) -> ae.Codec:
    from relic.models.autoencoder import load_vae
    from relic.models.tiny_decoder import TinyDecoder

    vae = load_vae(STAGE_VAE).float()
    if which == "vae":
        return ae.latent_codec("vae", vae)
    return ae.latent_codec("tiny", vae, TinyDecoder.from_pretrained(STAGE_TINY).float())


def _previous(which: str) -> ae.Codec:
    from relic.models.autoencoder import load_vae
    from relic.models.tiny_decoder import TinyDecoder

    vae = load_vae(PREVIOUS_VAE).float()
    return ae.latent_codec(which, vae, None if which == "vae" else TinyDecoder.from_pretrained(PREVIOUS_TINY).float())


@pytest.fixture(scope="module")
def held_out_clips() -> list[np.ndarray]:
    """Two held-out clips (scene seeds >= 2**32), one per scene family, 17 frames at 224x128."""
    from relic.eval.suites.common import HELD_OUT_BASE
    from relic.world.writer import render_clip

    return [render_clip(HELD_OUT_BASE + 500 + i, seconds=18 / 16, size=(224, 128), family=f).frames[:17]
            for i, f in enumerate(("indoor", "outdoor"))]


def _flat_failures(codec: ae.Codec) -> dict:
    rep = ae.flat_colour_report(codec, {**ae.PRIMARIES, **ae.material_palette()})
    return {k: v for k, v in rep["colours"].items() if v["max_err"] > ae.FLAT_TOLERANCE}


def _saturation_ratios(codec: ae.Codec, clips) -> list[float]:
    return [ae.mean_saturation(codec.run(c)) / ae.mean_saturation(c) for c in clips]


@pytest.mark.parametrize("which", ["vae", "tiny"])
@torch.no_grad()
def test_flat_colours_round_trip_within_12_levels(which):
    assert _flat_failures(_codec(which)) == {}


@pytest.mark.parametrize("which", ["vae", "tiny"])
@torch.no_grad()
def test_saturation_of_held_out_frames_is_kept(which, held_out_clips):
    ratios = _saturation_ratios(_codec(which), held_out_clips)
    assert all(0.9 <= r <= 1.1 for r in ratios), ratios


@pytest.mark.parametrize("which", ["vae", "tiny"])
@torch.no_grad()
def test_the_previous_autoencoder_fails_both_checks(which, held_out_clips):
    """The sepia autoencoder of rounds 1-5: blue comes back grey, saturation drops well below 0.9."""
    codec = _previous(which)
    failures = _flat_failures(codec)
    assert "blue" in failures and len(failures) >= 10
    assert min(_saturation_ratios(codec, held_out_clips)) < 0.9
