"""Query images (search by image, duplicates of an image) read the same way by the API and the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

MAX_IMAGE_PIXELS = 40_000_000  # an image declaring more is refused before it is decoded


class BadImage(ValueError):
    """Not a readable image."""


class ImageTooLarge(ValueError):
    """An image declaring more than MAX_IMAGE_PIXELS pixels."""


def read_image(source: bytes | str | Path, name: str = "the image") -> np.ndarray:
    """(H, W, 3) uint8 from image bytes or a file, checked by content and size before decoding."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageTooLarge(f"{name} declares {image.width}x{image.height} pixels; "
                                    f"the limit is {MAX_IMAGE_PIXELS}")
            image.load()
            return np.asarray(image.convert("RGB"))
    except (ImageTooLarge, FileNotFoundError):
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its limit, before ours
        raise ImageTooLarge(f"{name} is too large ({exc}); the limit is {MAX_IMAGE_PIXELS}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"{name} is not a readable image ({type(exc).__name__}: {exc})") from exc
