"""Library routes: upload, browse, get, delete, re-index, stats."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile

from indexer.reader import sniff
from indexer.store import SORTABLE
from search.api.deps import jobs, save_upload, service, video_out
from search.api.queries import query_filters
from search.api.schemas import IngestOut, LibraryPage, ReindexOut, StatsOut, VideoDetail
from search.jobs import JobQueue
from search.params import Filters, shown
from search.service import Reelbase

router = APIRouter(tags=["library"])


@router.post("/videos", response_model=IngestOut, status_code=201, summary="Upload a video into the library")
def upload_video(file: UploadFile = File(...), svc: Reelbase = Depends(service)):
    path = save_upload(file, svc.uploads_dir)
    try:
        if sniff(path) is None:  # by content, before any decoder sees it
            raise HTTPException(415, f"{path.name} is not a video file (checked by content, not by name)")
        report = svc.ingest([path], keep_paths=False)  # its path is a temp folder
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    if report.failed:
        raise HTTPException(422, f"{shown(file.filename)}: {report.failed[0][1]}")
    video_id = (report.added or report.present)[0]
    return IngestOut(added=report.added, present=report.present, video=video_out(svc.get(video_id)))


@router.get("/videos", response_model=LibraryPage, summary="Browse the library: filtered, sorted, paginated")
def list_videos(offset: int = Query(0, ge=0, le=1_000_000), limit: int = Query(50, ge=1, le=500),
                sort: str = Query("created_at", pattern="^(" + "|".join(SORTABLE) + ")$"),
                order: str = Query("desc", pattern="^(asc|desc)$"), filters: Filters = Depends(query_filters),
                svc: Reelbase = Depends(service)):
    total, records = svc.browse(filters, sort, order == "desc", offset, limit)
    return LibraryPage(total=total, offset=offset, limit=limit, videos=[video_out(r) for r in records])


@router.get("/videos/{video_id}", response_model=VideoDetail, summary="A video's record and lineage")
def get_video(video_id: str, svc: Reelbase = Depends(service)):
    record = svc.get(video_id)
    parent, children = svc.lineage(record.video_id)
    return VideoDetail(video=video_out(record), parent=video_out(parent) if parent else None,
                       children=[video_out(c) for c in children])


@router.delete("/videos/{video_id}", response_model=VideoDetail, summary="Delete a video: its file and its vectors")
def delete_video(video_id: str, svc: Reelbase = Depends(service)):
    return VideoDetail(video=video_out(svc.delete(video_id)), parent=None, children=[])


@router.post("/library/reindex", response_model=ReindexOut, summary="Re-embed every video with the current model")
def reindex(svc: Reelbase = Depends(service)):
    return ReindexOut(**svc.reindex())


@router.get("/stats", response_model=StatsOut, summary="Counts, storage, models, jobs and recent activity")
def stats(svc: Reelbase = Depends(service), queue: JobQueue = Depends(jobs)):
    _, recent = svc.browse(limit=10)
    return StatsOut(**svc.stats(), jobs=queue.counts(), recent=[video_out(r) for r in recent])
