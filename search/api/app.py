"""The FastAPI app: models and store loaded once at start-up, routers by area, errors as clear 4xx."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from common.tasks import Busy
from indexer.milvus import StoreError
from indexer.probe import BadVideo
from search.api import jobs as jobs_routes
from search.api import library, media, queries
from search.api.deps import require_key
from search.api.events import JobEvents, TooManyStreams
from search.api.schemas import Health
from search.jobs import JobFinished, JobNotFound, JobQueue, QueueFull
from search.library import AmbiguousId, NotFound
from search.params import shown
from search.service import Reelbase
from search.settings import Settings

log = logging.getLogger(__name__)

MAX_MESSAGE = 300  # characters of a validation message (the value it is about is cut at ECHO_LIMIT)
CLEARER = {  # pydantic's messages that do not say what was wrong in the request
    "string_unicode": "Input holds a lone surrogate (a \\ud800-\\udfff escape alone), which is no character",
}


def _version() -> str:
    try:
        return version("reelbase")
    except PackageNotFoundError:
        return "0"


class BodyTooLarge(HTTPException):
    """Raised while the body streams in, so FastAPI passes it on as it is (a 413)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body exceeds the upload limit of {limit} bytes (REELBASE_MAX_UPLOAD_MB)")


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, by Content-Length or as it streams (no length)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _send_json(send, 413, BodyTooLarge(self.limit).detail)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Reelbase(settings).load_all()  # fail at start, not on a request
        app.state.service = service
        app.state.jobs = JobQueue(lambda params, cb, saving: service.generation.generate(params, cb, saving).video_id,
                                  settings.data_dir / "jobs", recover=service.generation.recover_clip,
                                  max_queued=settings.max_queued_jobs, keep_finished=settings.keep_finished_jobs,
                                  keep_days=settings.keep_finished_days)
        app.state.events = JobEvents(app.state.jobs, max_streams=settings.max_event_streams)
        log.info("serving %s (%s) with CLIP %s", settings.data_dir, settings.resolved_milvus_uri, settings.clip_model)
        try:
            yield
        finally:
            app.state.jobs.close()
            service.close()

    # No trailing-slash redirects: Starlette sends them before any route's key check, to the Host header's address
    app = FastAPI(title="reelbase", version=_version(), lifespan=lifespan, redirect_slashes=False,
                  description="Generate video clips with a diffusion transformer and find them again by meaning.")
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)

    @app.get("/health", response_model=Health, tags=["system"], summary="Liveness (needs no API key)")
    def health():
        return Health(status="ok", version=_version())

    secured = [Depends(require_key)]
    for router in (queries.router, library.router, media.router, jobs_routes.router):
        app.include_router(router, dependencies=secured)
    _add_error_handlers(app)
    return app


async def _ambiguous(request: Request, exc: AmbiguousId) -> JSONResponse:
    """409: an id prefix that names several videos (the library has grown since it was unique), with them."""
    candidates = [{"video_id": r.video_id, "title": r.title} for r in exc.candidates]
    return JSONResponse({"detail": str(exc), "candidates": candidates}, status_code=409)


async def _queue_full(request: Request, exc: QueueFull) -> JSONResponse:
    """429 with Retry-After: the generation queue holds its most jobs."""
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def _too_many_streams(request: Request, exc: TooManyStreams) -> JSONResponse:
    """503 with Retry-After: the service serves its most event streams."""
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each wrong part of the request and what is wrong with it. FastAPI's own handler echoes the
    whole value sent (however long) and fails on what JSON cannot hold (a lone surrogate, NaN)."""
    return JSONResponse({"detail": [_validation_error(e) for e in exc.errors()]}, status_code=422)


def _validation_error(error: dict) -> dict:
    """One validation error as FastAPI shapes it (type, loc, msg, input), every value sent cut to ECHO_LIMIT."""
    out = {"type": error["type"], "loc": [shown(part) if isinstance(part, str) else part for part in error["loc"]],
           "msg": shown(CLEARER.get(error["type"], error["msg"]), MAX_MESSAGE)}
    if "input" in error:
        out["input"] = shown(error["input"])
    return out


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int):
        async def handle(request: Request, exc: Exception):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return handle

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(AmbiguousId, _ambiguous)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(TooManyStreams, _too_many_streams)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(JobNotFound, handler(404))
    app.add_exception_handler(JobFinished, handler(409))
    app.add_exception_handler(Busy, handler(409))
    app.add_exception_handler(ValueError, handler(422))
    app.add_exception_handler(BadVideo, handler(422))
    app.add_exception_handler(StoreError, handler(503))
