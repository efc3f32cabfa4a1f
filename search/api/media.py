"""Media routes: the video file (with HTTP range requests), thumbnails and frames as PNG."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from search.api.deps import Service
from search.library import png_bytes

router = APIRouter(prefix="/media", tags=["media"])


@router.get("/{video_id}/video", summary="The video file; seekable (Range requests)")
def video_file(svc: Service, video_id: str):
    path = svc.library.video_path(video_id)  # from the catalog only, inside the library
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")


@router.get("/{video_id}/thumbnail", summary="A PNG thumbnail (the middle frame, or the frame at t)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def thumbnail(svc: Service, video_id: str, t: float | None = Query(None, ge=0, le=86_400)):
    return Response(svc.library.thumbnail(video_id, t), media_type="image/png",
                    headers={"Cache-Control": "max-age=3600"})


@router.get("/{video_id}/frame", summary="The frame at t seconds as a full-size PNG", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def frame(svc: Service, video_id: str, t: float = Query(0.0, ge=0, le=86_400)):
    image, actual_t = svc.library.frame_at(video_id, t)
    return Response(png_bytes(image), media_type="image/png", headers={"X-Frame-Time": f"{actual_t:.4f}"})
