"""Signed media links: a browser fetches `/media/...` with a signature that expires, not the API key.

Browsers cannot send a header for `<video>` and `<img>`, so when the API has a key it signs the media
links in its responses (`MediaLinks`): the path and its query parameters (a frame's `t`), so a link
opens that one thing only, and checks the signature of a media request against the same key. A
client never signs (the UI only puts its public address in front of the links it is given). The
links stay the same for an hour (so a page that redraws does not make the browser fetch its videos
again) and work for one to two hours.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from urllib.parse import urlencode

LIFETIME_S = 3600
SIGNATURE_PARAMS = ("expires", "sig")

Query = Iterable[tuple[str, str]]  # a query's (name, value) pairs, in order, names repeated as sent


def sign(key: str, path: str, query: Query, expires: int) -> str:
    """The HMAC of a path, its query parameters but the signature's own, and the expiry time."""
    message = f"{path}\n{canonical_query(query)}\n{expires}"
    return hmac.new(key.encode(), message.encode("utf-8", "backslashreplace"), hashlib.sha256).hexdigest()


def canonical_query(query: Query) -> str:
    """The query parameters a link grants, in one order whatever order they came in (not `expires`, `sig`)."""
    return urlencode(sorted((str(name), str(value)) for name, value in query if name not in SIGNATURE_PARAMS))


def signed_query(key: str, path: str, query: Query = (), now: float | None = None) -> dict[str, str]:
    """`expires` and `sig` query parameters for a media path with these other query parameters."""
    expires = (int((time.time() if now is None else now) // LIFETIME_S) + 2) * LIFETIME_S
    return {"expires": str(expires), "sig": sign(key, path, query, expires)}


def is_valid(key: str, path: str, query: Query, now: float | None = None) -> bool:
    """Whether the query's `sig` signs this path with the query's other parameters until its `expires`, and that
    time has not passed; False for anything malformed (a signature parameter given twice included)."""
    query = list(query)
    given = {name: [value for n, value in query if n == name] for name in SIGNATURE_PARAMS}
    if any(len(values) != 1 for values in given.values()):
        return False
    (expires,), (sig,) = given["expires"], given["sig"]
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12 and sig.isascii()):
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sig.encode(), sign(key, path, query, int(expires)).encode())


class MediaLinks:
    """The links to a video's media, as the API puts them in its responses: paths on the API (a client puts
    the address browsers reach it at in front), signed with `key` when it is set, else bare."""

    def __init__(self, key: str):
        self._key = key

    def video(self, video_id: str, start: float | None = None) -> str:
        """The video file; from `start` seconds (a media fragment, which the browser keeps to itself)."""
        fragment = "" if start is None else f"#t={start:.3f}"
        return self.link(f"/media/{video_id}/video") + fragment

    def thumbnail(self, video_id: str) -> str:
        return self.link(f"/media/{video_id}/thumbnail")

    def frame(self, video_id: str, t: float) -> str:
        """The frame at `t` seconds, full size."""
        return self.link(f"/media/{video_id}/frame", t=f"{t:.4f}")

    def link(self, path: str, **query: str) -> str:
        """A media path with its query parameters, and the signature over both when there is a key."""
        pairs = list(query.items())
        if self._key:
            pairs += signed_query(self._key, path, pairs).items()
        return f"{path}?{urlencode(pairs)}" if pairs else path
