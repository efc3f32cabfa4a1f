"""Library: the admin dashboard. Counts and storage, models, recent activity, and a browsable table of videos."""

import datetime as dt

import streamlit as st

from ui.common import api, call, flash, human_size, name_of, play, show_flash

st.title("Library")
show_flash()
stats = call(api().stats)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Videos", stats["videos"])
c2.metric("Generated / ingested", f"{stats['videos_by_source'].get('generated', 0)} / "
                                  f"{stats['videos_by_source'].get('ingested', 0)}")
c3.metric("Frames indexed", stats["frames"])
c4.metric("Storage", human_size(stats["library_bytes"]))
st.caption(f"Embedding model {stats['model']} (dim {stats['dim']}) · generator {stats['generator']} · "
           f"Milvus {stats['server']} at {stats['milvus_uri']} · jobs {stats['jobs'] or 'none'}")

st.subheader("Recent activity")
for video in stats["recent"][:5]:
    when = dt.datetime.fromtimestamp(video["created_at"]).strftime("%Y-%m-%d %H:%M")
    st.caption(f"{when} · {video['source']} · {name_of(video)} [{video['video_id'][:8]}]")

st.subheader("Browse")
f1, f2, f3, f4 = st.columns(4)
source = f1.selectbox("Source", ["any", "generated", "ingested"], key="lib_source")
sort = f2.selectbox("Sort by", ["created_at", "duration_s", "num_frames", "width", "height", "fps"], key="lib_sort")
order = f3.selectbox("Order", ["desc", "asc"], key="lib_order")
per_page = f4.selectbox("Per page", [10, 20, 50], index=1, key="lib_per_page")
page = st.number_input("Page", min_value=1, value=1, key="lib_page")
listing = call(api().videos, (page - 1) * per_page, per_page, sort, order,
               {"source": None if source == "any" else source})
st.caption(f"{listing['total']} videos match; page {page} of {max(1, -(-listing['total'] // per_page))}")
rows = [{"id": v["video_id"][:8], "name": name_of(v), "source": v["source"], "duration (s)": round(v["duration_s"], 2),
         "size": f"{v['width']}x{v['height']}", "created": dt.datetime.fromtimestamp(v["created_at"]).strftime(
             "%Y-%m-%d %H:%M"), "parent": v["parent_id"][:8]} for v in listing["videos"]]
st.dataframe(rows, hide_index=True, width="stretch")

if listing["videos"]:
    chosen = st.selectbox("Open a video", listing["videos"], key="lib_open",
                          format_func=lambda v: f"{v['video_id'][:8]} · {name_of(v)}")
    detail = call(api().video, chosen["video_id"])
    left, right = st.columns([1, 2])
    with left:
        play(detail["video"])
    with right:
        parent = detail["parent"]
        st.markdown(f"**Parent:** {name_of(parent) + ' [' + parent['video_id'][:8] + ']' if parent else '—'}")
        st.markdown("**Children:** " + (", ".join(f"{name_of(c)} [{c['video_id'][:8]}]" for c in detail["children"])
                                        or "—"))
        st.json(detail["video"], expanded=False)
        if st.button("Delete this video", key="lib_delete"):
            call(api().delete, chosen["video_id"])
            flash(f"Deleted {chosen['video_id'][:8]}")

with st.expander("Maintenance"):
    st.write("Re-index embeds every video again with the API's CLIP model. After a change of model the API does "
             "not start until `reelbase reindex` has run with the new one.")
    if st.button("Re-index the library", key="reindex"):
        with st.spinner("Re-indexing…"):
            result = call(api().reindex)
        st.success(f"Re-indexed {result['reindexed']} videos with {result['model']}; {len(result['failed'])} failed")
