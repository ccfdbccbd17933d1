"""The start image -> the clean first latent: ONE code path for the runtime, the latent cache and the evals.

A stream begins at one RGB image. :meth:`relic.runtime.stream.StreamingSession.start` turns it into the DiT's
clean first latent with :func:`encode_start_image`; ``relic data encode`` (:mod:`relic.data.latents`) stores,
for every anchor frame 4j of a clip, the latent the same function gives for that frame alone, and every
training stage and eval suite takes its latent 0 from there. So a training window that starts at frame 4j
sees exactly the kind of first latent the runtime feeds at play time: the encoding of one image, not the
clip's video latent j (which covers frames 4j−3..4j with the clip's causal history and differs a lot).

:func:`preprocess_image` is the start image's only preprocessing: centre-crop to the model's aspect ratio,
then an area resize to (height, width). On a frame that already has the model's size it is the identity.

Precision is the caller's: the runtime encodes under its own autocast (bf16 or fp32), ``relic data encode``
under ``--precision``. The encode runs one image at a time, as the runtime does, so that both sides do the
same arithmetic (a batched convolution may round differently).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def preprocess_image(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (h w 3) RGB -> (1 3 1 height width) in [-1, 1]: center-crop to the aspect, then resize (area)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (h, w, 3), got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    if h < 8 or w < 8:
        raise ValueError(f"image is too small ({w}x{h})")
    target = width / height
    if w / h > target:
        cw = max(1, round(h * target))
        x0 = (w - cw) // 2
        img = img[:, x0:x0 + cw]
    else:
        ch = max(1, round(w / target))
        y0 = (h - ch) // 2
        img = img[y0:y0 + ch]
    img = cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).float() / 127.5 - 1.0
    return x.permute(2, 0, 1)[None, :, None]


@torch.no_grad()
def encode_start_image(vae, image: np.ndarray, height: int, width: int,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """The clean first latent of a stream that starts at ``image`` (uint8 (h w 3)).

    ``vae``: any autoencoder of :mod:`relic.models.autoencoder` (``encode(x) -> (mean, logvar)``, normalized).
    Returns the posterior mean (1 z 1 height/8 width/8), float32, on ``device`` (default: the VAE's).
    """
    if device is None:
        p = next(vae.parameters(), None)
        device = p.device if p is not None else "cpu"
    x = preprocess_image(image, height, width).to(device)
    z, _ = vae.encode(x)
    return z.float()


def encode_start_images(vae, images: np.ndarray, height: int | None = None, width: int | None = None
                        ) -> torch.Tensor:
    """:func:`encode_start_image` of each frame of ``images`` (n h w 3), one at a time -> (z n h/8 w/8) float32.

    ``height``/``width`` default to the frames' own size (then the preprocessing is the identity).
    """
    images = np.asarray(images)
    h = images.shape[1] if height is None else height
    w = images.shape[2] if width is None else width
    return torch.cat([encode_start_image(vae, f, h, w)[0] for f in images], dim=1).cpu()


__all__ = ["preprocess_image", "encode_start_image", "encode_start_images"]
