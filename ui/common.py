"""What the pages share: the API client, a clear stop when it cannot be reached, and how a video is shown."""

from __future__ import annotations

import streamlit as st

from ui.client import Api, ApiError, ApiUnavailable


def api() -> Api:
    """The session's API client (address and key from REELBASE_API_URL / REELBASE_API_KEY)."""
    if "api" not in st.session_state:
        st.session_state.api = Api()
    return st.session_state.api


def call(fn, *args, **kwargs):
    """Call the API; on failure show why and stop this page's run (the app itself stays up)."""
    try:
        return fn(*args, **kwargs)
    except ApiUnavailable as exc:
        st.error(f"The reelbase API cannot be reached. {exc.detail}")
        st.stop()
    except ApiError as exc:
        st.error(f"The API refused this ({exc.status}): {exc.detail}")
        st.stop()


def flash(message: str) -> None:
    """A success message that survives the rerun that follows an action."""
    st.session_state.flash = message
    st.rerun()


def show_flash() -> None:
    if message := st.session_state.pop("flash", None):
        st.success(message)


def name_of(video: dict) -> str:
    """A video's prompt, else its caption or original file name."""
    meta = video.get("meta") or {}
    return video.get("prompt") or meta.get("caption") or meta.get("original_name") or video["video_id"]


def play(video: dict, start: float = 0.0, width: int | str = "stretch") -> None:
    """The clip, playable, from `start` seconds (the browser fetches it from the API, seeking by Range)."""
    st.video(api().url(video["links"]["video"]), start_time=float(start), loop=True, muted=True, width=width)


def frame_image(link: str, caption: str | None = None) -> None:
    """A frame, from its link in a response."""
    st.image(api().url(link), caption=caption, width=160)


def human_size(n: int) -> str:
    """Bytes as kB, MB or GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
