"""reelbase's Streamlit UI: a client of the HTTP API. Run it with `reelbase ui` (or `streamlit run ui/app.py`)."""

import streamlit as st

from ui.client import ApiError
from ui.common import api

st.set_page_config(page_title="reelbase", page_icon="🎞️", layout="wide")

pages = st.navigation([
    st.Page("views/search.py", title="Search", icon=":material/search:", default=True),
    st.Page("views/generate.py", title="Generate", icon=":material/movie:"),
    st.Page("views/duplicates.py", title="Duplicates", icon=":material/content_copy:"),
    st.Page("views/library.py", title="Library", icon=":material/video_library:"),
])

with st.sidebar:
    st.caption(f"API: {api().base_url}")
    try:
        health = api().health()
        st.caption(f"connected · reelbase {health['version']}")
    except ApiError as exc:
        st.error(f"The reelbase API cannot be reached at {api().base_url}. Start it with `reelbase serve` "
                 f"(or `reelbase ui`, which starts it), or set REELBASE_API_URL. ({exc.detail})")

pages.run()
