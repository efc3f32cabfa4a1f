"""Query images (search by image, duplicates of an image) read the same way by the API and the CLI, within a
memory budget.

A small file can declare a huge picture: a 116 KB PNG of 6300 x 6300 pixels decodes to 160 MB (PIL holds
RGB in 4 bytes a pixel), and six at once took a server from 1.5 GB to 6.1 GB. A query needs far less: CLIP
looks at a 224-336 pixel square and the duplicate finder at 64 x 64. So a query image is known by its first
bytes (`image_format`) and read by `QueryImages`: a JPEG decodes at 1/2, 1/4 or 1/8 scale already
(`Image.draft`); an image that would still decode to more than `max_pixels` is refused before decoding;
what is decoded is shrunk by box averages (`Image.reduce`) to at most about QUERY_PIXELS; and at most
`max_decodes` images decode at once. A decode thus holds at most about 6 bytes per pixel of `max_pixels`
(a palette or 16-bit image is converted to RGB before shrinking). Once a query has answered, the API asks
glibc to hand the memory its threads freed back to the system (`release_freed_memory`).
"""

from __future__ import annotations

import ctypes
import io
import math
import threading
from pathlib import Path

import numpy as np
from PIL import Image

QUERY_PIXELS = 1_000_000  # a query image is shrunk by a whole factor to at most about this many pixels
QUERY_SIDE = 2048  # and no side longer (a thin strip's fingerprint filters would take a gigabyte)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # what a query image may be, by its first bytes
HEAD_BYTES = 12  # bytes that tell them apart
REDUCIBLE = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "I", "F", "CMYK", "YCbCr")  # modes Image.reduce takes


class BadImage(ValueError):
    """Not a readable image."""


class ImageTooLarge(ValueError):
    """An image that would decode to more pixels than the limit."""


def image_format(head: bytes) -> str | None:
    """The query image format (one of FORMATS) named by a file's first HEAD_BYTES bytes, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    return None


class QueryImages:
    """Reads query images within a memory budget: at most `max_pixels` decoded, by `max_decodes` threads at once."""

    def __init__(self, max_pixels: int, max_decodes: int):
        self.max_pixels = max_pixels
        self._decodes = threading.BoundedSemaphore(max_decodes)

    def read(self, source: bytes | str | Path, name: str = "the image") -> np.ndarray:
        """(H, W, 3) uint8 of about QUERY_PIXELS pixels from image bytes or a file, checked by content and size
        before decoding."""
        with self._decodes:
            return read_image(source, name, self.max_pixels)


def read_image(source: bytes | str | Path, name: str, max_pixels: int) -> np.ndarray:
    """`QueryImages.read` for one caller: no bound on how many decode at once."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(file, formats=FORMATS) as image:
            image.draft("RGB", _scaled(image.size, _reduction(image.size)))  # JPEG: decode at a smaller scale
            if image.width * image.height > max_pixels:
                raise ImageTooLarge(f"{name} is {image.width}x{image.height} pixels; "
                                    f"the limit for a query image is {max_pixels}")
            image.load()
            return np.asarray(_shrunk(image).convert("RGB"))
    except (ImageTooLarge, FileNotFoundError):
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its limit, before ours
        raise ImageTooLarge(f"{name} is too large ({exc}); the limit for a query image is {max_pixels}") from exc
    except Image.UnidentifiedImageError as exc:
        raise BadImage(f"{name} is not a readable image (a query image is {', '.join(FORMATS)})") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"{name} is not a readable image ({type(exc).__name__}: {exc})") from exc


def _reduction(size: tuple[int, int]) -> int:
    """The whole factor that shrinks a picture of `size` to at most about QUERY_PIXELS and QUERY_SIDE."""
    width, height = size
    return max(1, math.ceil(max(math.sqrt(width * height / QUERY_PIXELS), max(width, height) / QUERY_SIDE)))


def _scaled(size: tuple[int, int], factor: int) -> tuple[int, int]:
    return max(1, size[0] // factor), max(1, size[1] // factor)


def _shrunk(image: Image.Image) -> Image.Image:
    """The decoded image shrunk by box averages (`_reduction`; modes reduce cannot take become RGB first)."""
    factor = _reduction(image.size)
    if factor == 1:
        return image
    return (image if image.mode in REDUCIBLE else image.convert("RGB")).reduce(factor)


def release_freed_memory() -> None:
    """Return freed heap memory to the system, from every thread's malloc arena. A query's buffers are freed
    into its thread's own arena, which glibc otherwise keeps: twelve image queries at once (six on each image
    route, twice) left a server ~400 MB larger."""
    if _malloc_trim is not None:
        _malloc_trim(0)


try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim  # glibc's; elsewhere (musl, macOS) there is none to call
except AttributeError:
    _malloc_trim = None
