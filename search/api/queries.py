"""Search and near-duplicate routes."""

from __future__ import annotations

from fastapi import APIRouter, Query

from search.api.deps import Links, QueryFilters, QueryImage, Service, hit_out, video_out
from search.api.schemas import (
    DuplicateFrameQuery,
    DuplicateGroupOut,
    DuplicateGroupsOut,
    DuplicateHitOut,
    DuplicateVideoQuery,
    FramePairOut,
    FrameQuery,
    LinkOut,
    LinkPairOut,
    PromptQuery,
    ScoredVideo,
    SearchOut,
    SimilarQuery,
    TextQuery,
)
from search.api.uploads import multipart_form
from search.duplicates import DEFAULT_THRESHOLD, DuplicateHit
from search.media_links import MediaLinks

router = APIRouter(tags=["search"])
IMAGE_FORM = multipart_form("image", "the query image: PNG, JPEG, WebP, GIF or BMP (REELBASE_MAX_QUERY_IMAGE_MB)")


@router.post("/search/text", response_model=SearchOut, summary="Videos matching a text, one hit per video")
def search_text(svc: Service, links: Links, q: TextQuery):
    hits = svc.queries.text(q.text, q.top_k, q.filters, q.offset)
    queries = svc.queries
    return SearchOut(offset=q.offset, top_k=q.top_k, hits=[hit_out(h, links) for h in hits],
                     unknown_words=queries.unknown_words(q.text), notice=queries.vocabulary_notice(q.text),
                     matched="windows" if queries.matches_windows else "frames", frames_notice=queries.frames_notice)


@router.post("/search/image", response_model=SearchOut, summary="Videos with frames like an uploaded image",
             openapi_extra=IMAGE_FORM)
def search_image(svc: Service, links: Links, filters: QueryFilters, image: QueryImage,
                 top_k: int = Query(10, ge=1, le=200), offset: int = Query(0, ge=0, le=10_000)):
    hits = svc.queries.image(image, top_k, filters, offset)
    return SearchOut(offset=offset, top_k=top_k, hits=[hit_out(h, links) for h in hits])


@router.post("/search/frame", response_model=SearchOut, summary="Videos with frames like a library video's frame at t")
def search_frame(svc: Service, links: Links, q: FrameQuery):
    hits = svc.queries.frame(q.video_id, q.t, q.top_k, q.filters, q.offset)
    return SearchOut(offset=q.offset, top_k=q.top_k, hits=[hit_out(h, links) for h in hits])


@router.post("/search/similar", response_model=list[ScoredVideo], summary="The videos nearest to a library video")
def similar(svc: Service, links: Links, q: SimilarQuery):
    nearest = svc.queries.similar(q.video_id, q.top_k, q.filters)
    return [ScoredVideo(video=video_out(r, links), score=s) for r, s in nearest]


@router.post("/search/prompts", response_model=list[ScoredVideo],
             summary="Generated videos whose prompts mean something close to the text")
def search_prompts(svc: Service, links: Links, q: PromptQuery):
    return [ScoredVideo(video=video_out(r, links), score=s) for r, s in svc.queries.prompts(q.text, q.top_k)]


def _dup_out(hits: list[DuplicateHit], links: MediaLinks) -> list[DuplicateHitOut]:
    return [DuplicateHitOut(video=video_out(h.video, links), score=h.score, offset_s=h.offset_s,
                            pairs=[FramePairOut(**vars(p)) for p in h.pairs]) for h in hits]


def _link_out(link: dict, links: MediaLinks) -> LinkOut:
    """A duplicate link (videos a and b), each frame pair with the links to show its two frames."""
    pairs = [LinkPairOut(**pair, frame_a_url=links.frame(link["a"], pair["t_a"]),
                         frame_b_url=links.frame(link["b"], pair["t_b"])) for pair in link["pairs"]]
    return LinkOut(**{**link, "pairs": pairs})


@router.post("/duplicates/image", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Library videos holding a near-copy of an uploaded image", openapi_extra=IMAGE_FORM)
def duplicates_of_image(svc: Service, links: Links, image: QueryImage,
                        threshold: float = Query(DEFAULT_THRESHOLD, ge=0, le=1), top_k: int = Query(10, ge=1, le=100)):
    return _dup_out(svc.duplicates.of_image(image, threshold, top_k), links)


@router.post("/duplicates/frame", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Other library videos holding a near-copy of a library video's frame at t")
def duplicates_of_frame(svc: Service, links: Links, q: DuplicateFrameQuery):
    return _dup_out(svc.duplicates.of_frame(q.video_id, q.t, q.threshold, q.top_k), links)


@router.post("/duplicates/video", response_model=list[DuplicateHitOut], tags=["duplicates"],
             summary="Library videos that are near-copies of a library video")
def duplicates_of_video(svc: Service, links: Links, q: DuplicateVideoQuery):
    return _dup_out(svc.duplicates.of_video(q.video_id, q.threshold, q.top_k), links)


@router.get("/duplicates", response_model=DuplicateGroupsOut, tags=["duplicates"],
            summary="Library-wide groups of near-duplicate videos with their matching frame pairs")
def duplicate_groups(svc: Service, links: Links, threshold: float = Query(DEFAULT_THRESHOLD, ge=0, le=1)):
    groups = svc.duplicates.groups(threshold)
    return DuplicateGroupsOut(threshold=threshold, groups=[
        DuplicateGroupOut(videos=[video_out(v, links) for v in g.videos],
                          links=[_link_out(link, links) for link in g.links])
        for g in groups])
