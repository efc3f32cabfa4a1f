"""Signed media links: a browser fetches `/media/...` with a signature that expires, not the API key.

A client that holds the key (the UI) signs a media path; the API checks the signature against
its own key. The links stay the same for an hour (so a page that redraws does not make the
browser fetch its videos again) and work for one to two hours.
"""

from __future__ import annotations

import hashlib
import hmac
import time

LIFETIME_S = 3600


def sign(key: str, path: str, expires: int) -> str:
    return hmac.new(key.encode(), f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: str, path: str, now: float | None = None) -> dict[str, str]:
    """`expires` and `sig` query parameters for a media path."""
    expires = (int((time.time() if now is None else now) // LIFETIME_S) + 2) * LIFETIME_S
    return {"expires": str(expires), "sig": sign(key, path, expires)}


def is_valid(key: str, path: str, expires: str | None, sig: str | None, now: float | None = None) -> bool:
    """Whether `sig` signs `path` until `expires`, and that time has not passed; False for anything malformed."""
    if not (expires and sig and expires.isascii() and expires.isdigit() and len(expires) <= 12 and sig.isascii()):
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sig.encode(), sign(key, path, int(expires)).encode())
