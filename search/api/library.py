"""Library routes: upload, browse, get, delete, re-index, stats."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from indexer.records import SORTABLE
from search.api.deps import Jobs, Links, QueryFilters, Service, UploadedVideo, video_out
from search.api.schemas import IngestOut, LibraryPage, ReindexOut, StatsOut, VideoDetail
from search.api.uploads import multipart_form
from search.params import shown

router = APIRouter(tags=["library"])


@router.post("/videos", response_model=IngestOut, status_code=201, summary="Upload a video into the library",
             openapi_extra=multipart_form("file", "the video file (REELBASE_MAX_UPLOAD_MB)"))
def upload_video(svc: Service, links: Links, file: UploadedVideo):
    report = svc.library.ingest([file], keep_paths=False)  # its path is a temp folder
    if report.failed:
        raise HTTPException(422, f"{shown(file.name)}: {report.failed[0][1]}")
    video_id = (report.added or report.present)[0]
    return IngestOut(added=report.added, present=report.present, video=video_out(svc.library.get(video_id), links))


@router.get("/videos", response_model=LibraryPage, summary="Browse the library: filtered, sorted, paginated")
def list_videos(svc: Service, links: Links, filters: QueryFilters, offset: int = Query(0, ge=0, le=1_000_000),
                limit: int = Query(50, ge=1, le=500),
                sort: str = Query("created_at", pattern="^(" + "|".join(SORTABLE) + ")$"),
                order: str = Query("desc", pattern="^(asc|desc)$")):
    total, records = svc.library.browse(filters, sort, order == "desc", offset, limit)
    return LibraryPage(total=total, offset=offset, limit=limit, videos=[video_out(r, links) for r in records])


@router.get("/videos/{video_id}", response_model=VideoDetail, summary="A video's record and lineage")
def get_video(svc: Service, links: Links, video_id: str):
    record = svc.library.get(video_id)
    parent, children = svc.library.lineage(record.video_id)
    return VideoDetail(video=video_out(record, links), parent=video_out(parent, links) if parent else None,
                       children=[video_out(c, links) for c in children])


@router.delete("/videos/{video_id}", response_model=VideoDetail, summary="Delete a video: its file and its vectors")
def delete_video(svc: Service, links: Links, video_id: str):
    return VideoDetail(video=video_out(svc.library.delete(video_id), links), parent=None, children=[])


@router.post("/library/reindex", response_model=ReindexOut, summary="Re-embed every video with the current model")
def reindex(svc: Service):
    return ReindexOut(**svc.maintenance.reindex())


@router.get("/stats", response_model=StatsOut, summary="Counts, storage, models, jobs and recent activity")
def stats(svc: Service, queue: Jobs, links: Links):
    _, recent = svc.library.browse(limit=10)
    return StatsOut(**svc.stats(), jobs=queue.counts(), recent=[video_out(r, links) for r in recent])
