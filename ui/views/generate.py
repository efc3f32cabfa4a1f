"""Generate: a prompt and its settings in, live progress while the job runs, the clip (already in the library) out."""

import time

import streamlit as st

from ui.common import api, call, name_of, play

MODELS_OWN = "model's own"

st.title("Generate")

with st.form("generate"):
    prompt = st.text_input("Prompt", "a red ball moving right on black", max_chars=500)
    negative = st.text_input("Negative prompt", "", max_chars=500)
    c1, c2, c3, c4, c5 = st.columns(5)
    seed = c1.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0)
    steps = c2.slider("Steps", 1, 100, 30)
    guidance = c3.select_slider("Guidance", [MODELS_OWN, *(x / 2 for x in range(41))], MODELS_OWN,
                                help="classifier-free guidance scale; the model's own by default")
    candidates = c4.select_slider("Candidates", [MODELS_OWN, *range(1, 9)], MODELS_OWN,
                                  help="starting noises searched for the motion the prompt asks for (each costs the "
                                       "first steps once more; the model may search more rounds where none shows "
                                       "all the prompt asks), or clips finished to keep a continued clip's motion "
                                       "(each costs every step once more); 1: none; the model's own by default")
    frames = c5.slider("Frames", 2, 128, 16)
    submitted = st.form_submit_button("Generate")

if submitted:
    if not prompt.strip():
        st.error("Write a prompt first.")
    else:
        job = call(api().create_job, {"prompt": prompt, "negative_prompt": negative, "seed": int(seed),
                                      "steps": int(steps), "frames": int(frames),
                                      "guidance": None if guidance == MODELS_OWN else float(guidance),
                                      "candidates": None if candidates == MODELS_OWN else int(candidates)})
        st.session_state.watch_job = job["job_id"]


def follow(job_id: str) -> dict:
    """Show the job's progress until it ends; return its final state."""
    bar = st.progress(0.0, text="queued")
    cancel = st.button("Cancel", key=f"cancel_{job_id}")
    if cancel:
        call(api().cancel, job_id)
    while True:
        job = call(api().job, job_id)
        total = max(1, job["total_steps"])
        bar.progress(min(1.0, job["step"] / total), text=f"{job['status']} · step {job['step']} of {total}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)


if job_id := st.session_state.get("watch_job"):
    job = follow(job_id)
    if job["status"] == "succeeded" and job.get("video"):
        st.success(f"Done: saved into the library as {job['video']['video_id']}")
        play(job["video"], width=384)
        st.caption(name_of(job["video"]))
    elif job["status"] == "failed":
        st.error(f"The job failed: {job['error']}")
    else:
        st.warning("The job was cancelled.")

st.subheader("Jobs")
jobs = call(api().jobs, 30)
if jobs:
    st.dataframe([{"job": j["job_id"][:8], "status": j["status"], "progress": f"{j['step']}/{j['total_steps']}",
                   "mode": j["params"]["mode"], "prompt": j["params"]["prompt"], "video": (j["video_id"] or "")[:8],
                   "error": j["error"] or ""} for j in jobs], hide_index=True, width="stretch")
else:
    st.caption("No jobs yet.")
