"""What every router shares: the service, the API key check, uploads, and turning records into responses
(with the media links signed for browsers)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from indexer.records import VideoHit, VideoRecord
from search import images, media_links
from search.api import uploads
from search.api.events import JobEvents
from search.api.schemas import FrameOut, HitOut, VideoLinks, VideoOut
from search.jobs import JobQueue
from search.params import MAX_MODEL_FILTER, Filters
from search.service import Reelbase

header_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def service(request: Request) -> Reelbase:
    return request.app.state.service


def jobs(request: Request) -> JobQueue:
    return request.app.state.jobs


def job_events(request: Request) -> JobEvents:
    return request.app.state.events


def query_filters(source: str | None = Query(None, pattern="^(generated|ingested)$"),
                  created_after: float | None = Query(None, ge=0, allow_inf_nan=False),
                  created_before: float | None = Query(None, ge=0, allow_inf_nan=False),
                  min_duration: float | None = Query(None, ge=0, allow_inf_nan=False),
                  max_duration: float | None = Query(None, ge=0, allow_inf_nan=False),
                  model: str | None = Query(None, min_length=1, max_length=MAX_MODEL_FILTER)) -> Filters:
    try:
        return Filters(source=source, created_after=created_after, created_before=created_before,
                       min_duration=min_duration, max_duration=max_duration, model=model)
    except ValidationError as exc:  # a 422 naming the query parameter, not a 500
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None


Service = Annotated[Reelbase, Depends(service)]  # what every route that reads or writes the library takes
Jobs = Annotated[JobQueue, Depends(jobs)]
Events = Annotated[JobEvents, Depends(job_events)]  # the job queue's event streams
QueryFilters = Annotated[Filters, Depends(query_filters)]  # the library filters as query parameters


def require_key(request: Request, header: str | None = Depends(header_key)):
    """When REELBASE_API_KEY is set, a request carries it (X-API-Key), or is a media link the key signed."""
    expected = request.app.state.service.settings.api_key
    if not expected:
        return
    if header and secrets.compare_digest(header.encode(), expected.encode()):
        return
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path[len(root):] if root and path.startswith(root) else path  # as the app routes it and signs its links
    if path.startswith("/media/") and media_links.is_valid(expected, path, request.query_params.multi_items()):
        return
    raise HTTPException(401, "a valid API key is required (X-API-Key header; media links may instead carry "
                             "a signature that has not expired)", headers={"WWW-Authenticate": "X-API-Key"})


# --- records to responses ----------------------------------------------------------------------


def signed_links(request: Request) -> media_links.MediaLinks:
    """The media links responses carry: signed with the API's key when it has one, so a browser opens them
    without the key (it cannot send a header for `<video>` or `<img>`)."""
    return media_links.MediaLinks(request.app.state.service.settings.api_key)


Links = Annotated[media_links.MediaLinks, Depends(signed_links)]


def video_out(record: VideoRecord, links: media_links.MediaLinks) -> VideoOut:
    video_id = record.video_id
    return VideoOut(**record.to_dict(), links=VideoLinks(video=links.video(video_id),
                                                         thumbnail=links.thumbnail(video_id)))


def hit_out(hit: VideoHit, links: media_links.MediaLinks) -> HitOut:
    video_id = hit.video.video_id
    return HitOut(video=video_out(hit.video, links), score=hit.score, best_t=hit.best_t,
                  frames=[FrameOut(index=f.index, t=f.t, score=f.score, frame_url=links.frame(video_id, f.t), end=f.end)
                          for f in hit.frames],
                  media_url=links.video(video_id, start=hit.best_t), thumbnail_url=links.frame(video_id, hit.best_t))


# --- uploads (read from the request stream: search/api/uploads.py) ------------------------------


async def query_image(request: Request, svc: Service) -> AsyncIterator[np.ndarray]:
    """The form's query image (file field `image`) as (H, W, 3) uint8: streamed and checked by its first bytes,
    then decoded within the memory budget (`search.images`). When the route returns, the memory its decoding
    and encoding freed goes back to the system."""
    data = await uploads.receive_image(request, "image", svc.settings.max_query_image_bytes)
    try:
        yield await run_in_threadpool(_decoded, svc.images, data)
    finally:
        del data
        await run_in_threadpool(images.release_freed_memory)


def _decoded(reader: images.QueryImages, data: bytes) -> np.ndarray:
    """The image decoded; 413 if too large, 415 if it is no readable image."""
    try:
        return reader.read(data, "the upload")
    except images.ImageTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except images.BadImage as exc:
        raise HTTPException(415, str(exc)) from exc


async def uploaded_video(request: Request, svc: Service) -> AsyncIterator[Path]:
    """The form's video (file field `file`), written once into a temp folder under uploads/ once its first bytes
    show a video; the folder is removed when the route returns."""
    path = await uploads.receive_video(request, "file", svc.folder.uploads, svc.settings.max_upload_bytes)
    try:
        yield path
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


QueryImage = Annotated[np.ndarray, Depends(query_image, scope="function")]  # memory returned before the response
UploadedVideo = Annotated[Path, Depends(uploaded_video, scope="function")]  # removed before the response is sent
