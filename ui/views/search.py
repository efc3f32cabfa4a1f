"""Search: by text or by an image; a grid of clips starting at their best moment; more like this; re-seed."""

import datetime as dt

import streamlit as st

from ui.common import api, call, name_of, play

COLUMNS = 3
st.title("Search")

text = st.text_input("Describe what you are looking for", key="query", placeholder="a red ball moving right on black")
image = st.file_uploader("…or search by an image", type=["png", "jpg", "jpeg", "webp"], key="query_image")
with st.expander("Filters"):
    source = st.selectbox("Source", ["any", "generated", "ingested"], key="f_source")
    low, high = st.slider("Duration (s)", 0.0, 60.0, (0.0, 60.0), key="f_duration")
    since = st.date_input("Created on or after", value=None, key="f_since")
    per_page = st.slider("Results per page", 3, 30, 9, step=3, key="per_page")
filters = {"source": None if source == "any" else source,
           "min_duration": low or None, "max_duration": None if high >= 60 else high,
           "created_after": dt.datetime.combine(since, dt.time()).timestamp() if since else None}
page = st.number_input("Page", min_value=1, value=1, step=1, key="page")
offset = (page - 1) * per_page


def reseed_actions(hit: dict, key: str) -> None:
    """Start a generation from this hit: continue it, animate its best frame, or vary it with a new prompt."""
    video, t = hit["video"], hit["best_t"]
    with st.popover("Generate from this"):
        prompt = st.text_input("Prompt (empty: the clip's own)", key=f"rp_{key}")
        mode = st.radio("How", ["continue", "animate", "variation"], key=f"rm_{key}",
                        format_func={"continue": "continue this clip", "animate": f"animate the frame at {t:.2f}s",
                                     "variation": "a variation"}.get)
        if st.button("Start", key=f"rs_{key}"):
            job = call(api().reseed, {"video_id": video["video_id"], "t": t, "mode": mode, "prompt": prompt or None})
            st.session_state.watch_job = job["job_id"]
            st.success(f"Job {job['job_id'][:8]} queued: follow it on the Generate page.")


def moment(frame: dict) -> str:
    """A frame's time, or a window's span."""
    end = frame.get("end")
    return f"{frame['t']:.2f}–{end:.2f}s" if end is not None else f"{frame['t']:.2f}s"


def show_hits(hits: list[dict], prefix: str) -> None:
    if not hits:
        st.info("No matches: the library is empty or nothing is close.")
    for row in range(0, len(hits), COLUMNS):
        for col, hit in zip(st.columns(COLUMNS), hits[row:row + COLUMNS]):
            with col:
                video = hit["video"]
                play(video, hit.get("best_t", 0.0))
                moments = ", ".join(moment(f) for f in hit.get("frames", []))
                st.markdown(f"**{hit['score']:.3f}** · {name_of(video)}")
                st.caption(f"{video['source']} · best at {hit.get('best_t', 0):.2f}s"
                           + (f" · moments {moments}" if moments else ""))
                key = f"{prefix}_{video['video_id']}"
                st.button("More like this", key=f"more_{key}", on_click=st.session_state.update,
                          kwargs={"similar_to": video})
                if "best_t" in hit:
                    reseed_actions(hit, key)


if st.session_state.get("similar_to"):
    source_video = st.session_state.similar_to
    st.subheader(f"More like “{name_of(source_video)}”")
    st.button("Back to the search", on_click=st.session_state.update, kwargs={"similar_to": None})
    similar = call(api().similar, source_video["video_id"], per_page)
    show_hits([{"video": s["video"], "score": s["score"]} for s in similar], "sim")
elif image is not None:
    result = call(api().search_image, image.getvalue(), image.name, per_page, offset, filters)
    show_hits(result["hits"], "img")
elif text.strip():
    result = call(api().search_text, text, per_page, offset, filters)
    if result.get("notice"):
        st.warning(result["notice"])
    if result.get("frames_notice"):
        st.info(result["frames_notice"])
    st.caption(f"results {offset + 1}–{offset + len(result['hits'])}")
    show_hits(result["hits"], "txt")
else:
    st.info("Type a description or drop an image to search the library.")
