"""Search and near-duplicate routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from search.api.deps import hit_out, read_image, service, video_out
from search.api.schemas import (
    DuplicateFrameQuery,
    DuplicateGroupOut,
    DuplicateGroupsOut,
    DuplicateHitOut,
    DuplicateVideoQuery,
    FramePairOut,
    FrameQuery,
    LinkOut,
    PromptQuery,
    ScoredVideo,
    SearchOut,
    SimilarQuery,
    TextQuery,
)
from search.duplicates import DEFAULT_THRESHOLD
from search.params import MAX_MODEL_FILTER, Filters
from search.service import DuplicateHit, Reelbase

router = APIRouter(tags=["search"])


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


@router.post("/search/text", response_model=SearchOut, summary="Videos matching a text, one hit per video")
def search_text(q: TextQuery, svc: Reelbase = Depends(service)):
    hits = svc.search_text(q.text, q.top_k, q.filters, q.offset)
    return SearchOut(offset=q.offset, top_k=q.top_k, hits=[hit_out(h) for h in hits],
                     unknown_words=svc.encoder.unknown_words(q.text), notice=svc.encoder.vocabulary_notice(q.text))


@router.post("/search/image", response_model=SearchOut, summary="Videos with frames like an uploaded image")
def search_image(image: UploadFile = File(...), top_k: int = Query(10, ge=1, le=200),
                 offset: int = Query(0, ge=0, le=10_000), filters: Filters = Depends(query_filters),
                 svc: Reelbase = Depends(service)):
    hits = svc.search_image(read_image(image), top_k, filters, offset)
    return SearchOut(offset=offset, top_k=top_k, hits=[hit_out(h) for h in hits])


@router.post("/search/frame", response_model=SearchOut, summary="Videos with frames like a library video's frame at t")
def search_frame(q: FrameQuery, svc: Reelbase = Depends(service)):
    hits = svc.search_frame(q.video_id, q.t, q.top_k, q.filters, q.offset)
    return SearchOut(offset=q.offset, top_k=q.top_k, hits=[hit_out(h) for h in hits])


@router.post("/search/similar", response_model=list[ScoredVideo], summary="The videos nearest to a library video")
def similar(q: SimilarQuery, svc: Reelbase = Depends(service)):
    return [ScoredVideo(video=video_out(r), score=s) for r, s in svc.similar(q.video_id, q.top_k, q.filters)]


@router.post("/search/prompts", response_model=list[ScoredVideo],
             summary="Generated videos whose prompts mean something close to the text")
def search_prompts(q: PromptQuery, svc: Reelbase = Depends(service)):
    return [ScoredVideo(video=video_out(r), score=s) for r, s in svc.search_prompts(q.text, q.top_k)]


def _dup_out(hits: list[DuplicateHit]) -> list[DuplicateHitOut]:
    return [DuplicateHitOut(video=video_out(h.video), score=h.score, offset_s=h.offset_s,
                            pairs=[FramePairOut(**vars(p)) for p in h.pairs]) for h in hits]


@router.post("/duplicates/image", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Library videos holding a near-copy of an uploaded image")
def duplicates_of_image(image: UploadFile = File(...), threshold: float = Query(DEFAULT_THRESHOLD, ge=0, le=1),
                        top_k: int = Query(10, ge=1, le=100), svc: Reelbase = Depends(service)):
    return _dup_out(svc.duplicates_of_image(read_image(image), threshold, top_k))


@router.post("/duplicates/frame", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Other library videos holding a near-copy of a library video's frame at t")
def duplicates_of_frame(q: DuplicateFrameQuery, svc: Reelbase = Depends(service)):
    return _dup_out(svc.duplicates_of_frame(q.video_id, q.t, q.threshold, q.top_k))


@router.post("/duplicates/video", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Library videos that are near-copies of a library video")
def duplicates_of_video(q: DuplicateVideoQuery, svc: Reelbase = Depends(service)):
    return _dup_out(svc.duplicates_of_video(q.video_id, q.threshold, q.top_k))


@router.get("/duplicates", response_model=DuplicateGroupsOut, tags=["duplicates"],
            summary="Library-wide groups of near-duplicate videos with their matching frame pairs")
def duplicate_groups(threshold: float = Query(DEFAULT_THRESHOLD, ge=0, le=1), svc: Reelbase = Depends(service)):
    groups = svc.duplicate_groups(threshold)
    return DuplicateGroupsOut(threshold=threshold, groups=[
        DuplicateGroupOut(videos=[video_out(v) for v in g.videos], links=[LinkOut(**k) for k in g.links])
        for g in groups])
