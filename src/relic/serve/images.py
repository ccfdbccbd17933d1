"""Safe decoding of uploaded start images: format check, pixel limit, then fit to the model's size."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; the message is safe to show to the user."""


def decode_image(data: bytes, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """Decode an uploaded PNG/JPEG/WebP and centre-crop + resize it to the model's size.

    Args:
        data: the file's bytes.
        size: (width, height) of the model.
        max_pixels: the largest accepted width × height, checked from the header before decoding.
    Returns:
        uint8 (h w 3) RGB.
    Raises:
        ImageRejected: not an image, a format other than PNG/JPEG/WebP, too many pixels or a corrupt file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            if img.format not in ALLOWED_FORMATS:  # pragma: no cover - formats= already restricts this
                raise ImageRejected(f"unsupported image format {img.format}; use PNG, JPEG or WebP")
            w, h = img.size
            if w < 1 or h < 1 or w * h > max_pixels:
                raise ImageRejected(f"image is {w}x{h} pixels; the limit is {max_pixels:,} pixels")
            img.seek(0)  # first frame of an animated PNG/WebP
            img.load()
            img = ImageOps.exif_transpose(img)
            img = img.convert("RGB")
            img = ImageOps.fit(img, size, method=Image.Resampling.BICUBIC)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not a PNG, JPEG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"image has too many pixels; the limit is {max_pixels:,}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected(f"cannot decode the image ({e.__class__.__name__})") from None
    return np.asarray(img, dtype=np.uint8)


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """uint8 (h w 3) RGB -> JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
