"""Generation job routes: create, re-seed from a hit, status, server-sent events, cancel."""

from __future__ import annotations

import json

from fastapi import APIRouter, Query

from generator.params import MAX_PROMPT, GenerationParams
from search.api.deps import Events, Jobs, Links, Service, video_out
from search.api.events import EventStreamResponse
from search.api.schemas import JobList, JobOut, Reseed
from search.jobs import TERMINAL, Job
from search.media_links import MediaLinks
from search.service import Reelbase

router = APIRouter(tags=["generation"])
KEEPALIVE_S = 15.0  # an event stream repeats the job's state after this long without a change


def job_out(job: Job, svc: Reelbase, links: MediaLinks) -> JobOut:
    video = svc.library.find(job.video_id) if job.video_id else None
    return JobOut(**{k: v for k, v in job.to_dict().items() if k != "version"},
                  video=video_out(video, links) if video else None)


@router.post("/jobs", response_model=JobOut, status_code=202, summary="Queue a generation (any mode)")
def create_job(svc: Service, queue: Jobs, links: Links, params: GenerationParams):
    if params.video_id:  # the job records the full id
        params = params.model_copy(update={"video_id": svc.library.resolve_id(params.video_id)})
    svc.generation.check_source(params)  # 404 or 422 now rather than a failed job later
    return job_out(queue.submit(params), svc, links)


@router.post("/reseed", response_model=JobOut, status_code=202, summary="Start a generation from a search hit")
def reseed(svc: Service, queue: Jobs, links: Links, hit: Reseed):
    record = svc.library.get(hit.video_id)
    prompt = (hit.prompt or record.prompt or record.meta.get("caption") or "a clip like this one")[:MAX_PROMPT]
    params = GenerationParams(**hit.model_dump(exclude={"prompt", "video_id"}), video_id=record.video_id, prompt=prompt)
    svc.generation.check_source(params)
    return job_out(queue.submit(params), svc, links)


@router.get("/jobs", response_model=JobList, summary="Recent jobs, newest first")
def list_jobs(svc: Service, queue: Jobs, links: Links, limit: int = Query(50, ge=1, le=500)):
    return JobList(jobs=[job_out(j, svc, links) for j in queue.list(limit)])


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job's status and progress")
def get_job(svc: Service, queue: Jobs, links: Links, job_id: str):
    return job_out(queue.get(job_id), svc, links)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a queued or running job")
def cancel_job(svc: Service, queue: Jobs, links: Links, job_id: str):
    return job_out(queue.cancel(job_id), svc, links)


@router.get("/jobs/{job_id}/events", summary="Server-sent events: the job on every change, until it ends",
            response_class=EventStreamResponse, status_code=200,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(svc: Service, queue: Jobs, events: Events, links: Links, job_id: str):
    subscription = events.subscribe(queue.get(job_id))  # 404 or 503 before the stream starts
    return EventStreamResponse(subscription, lambda job: event_text(job, svc, links), KEEPALIVE_S)


def event_text(job: Job, svc: Reelbase, links: MediaLinks) -> str:
    """One server-sent event: the job's status as its name, the job as its data (with its clip once it ended)."""
    if job.status in TERMINAL:
        body = job_out(job, svc, links).model_dump_json()
    else:
        body = json.dumps({k: v for k, v in job.to_dict().items() if k != "version"})
    return f"event: {job.status}\ndata: {body}\n\n"
