"""Duplicates: the library's near-duplicate groups, the matching frames side by side with their times, delete a copy."""

import time

import streamlit as st

from ui.common import api, call, flash, frame_image, name_of, show_flash

RESCAN_AFTER_S = 1800  # the media links in a scan, signed by the API, work for an hour at least


def scan(threshold: float) -> list[dict]:
    """The library's duplicate groups: the last scan's, unless it was at another threshold, is forgotten
    (`dup_scan` None) or so old that its frame links may stop working before the page is redrawn."""
    last = st.session_state.get("dup_scan")
    if last is None or last["threshold"] != threshold or time.time() - last["at"] > RESCAN_AFTER_S:
        with st.spinner("Comparing videos…"):
            groups = call(api().duplicates, threshold)["groups"]
        st.session_state.dup_scan = last = {"threshold": threshold, "at": time.time(), "groups": groups}
    return last["groups"]


st.title("Duplicates")
show_flash()
threshold = st.slider("Threshold (verified similarity)", 0.5, 1.0, 0.8, step=0.01, key="dup_threshold")
if st.button("Scan the library", key="scan") or "dup_scan" in st.session_state:
    groups = scan(threshold)
    st.caption(f"{len(groups)} group{'s' * (len(groups) != 1)} of near-duplicate videos at threshold {threshold:.2f}")
    for n, group in enumerate(groups, 1):
        videos = {v["video_id"]: v for v in group["videos"]}
        with st.expander(f"Group {n}: {len(videos)} videos · " + ", ".join(name_of(v) for v in videos.values()),
                         expanded=n <= 3):
            for link in group["links"]:
                a, b = videos[link["a"]], videos[link["b"]]
                st.markdown(f"**{name_of(a)}** ~ **{name_of(b)}** · score {link['score']:.3f}")
                for pair in link["pairs"][:3]:
                    left, right = st.columns(2)
                    with left:
                        frame_image(pair["frame_a_url"], f"{a['video_id'][:8]} at {pair['t_a']:.2f}s")
                    with right:
                        frame_image(pair["frame_b_url"], f"{b['video_id'][:8]} at {pair['t_b']:.2f}s")
            for video_id, video in videos.items():
                if st.button(f"Delete {name_of(video)} [{video_id[:8]}]", key=f"del_{n}_{video_id}"):
                    call(api().delete, video_id)
                    st.session_state.dup_scan = None  # forgotten: the next run scans again
                    flash(f"Deleted {video_id[:8]}")
else:
    st.info("Scan the library to find videos that are copies of each other (re-encoded, resized, cropped, "
            "brightened, trimmed).")
