"""The frame search behind `VideoStore.search_frames` and `search_windows`: videos ranked by their best
frames (or windows of frames), in pages.

A frame index returns frames, not videos, and one long video's frames may fill any window of
frame hits (its windows likewise); a filter may leave so few frames that an approximate index search starves. So the
search goes in rounds of growing size, each leaving out the videos already ranked, and scores
frames exactly where the index finds none.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

import numpy as np

from indexer.expressions import all_of, in_list, quote
from indexer.milvus import MAX_TOPK, WINDOWS
from indexer.records import FrameHit, VideoHit, VideoRecord

if TYPE_CHECKING:
    from indexer.store import VideoStore

log = logging.getLogger(__name__)

ROUND_VIDEOS = 16  # videos the first round of a frame search asks for; each next round asks twice as many
EXACT_ROWS = MAX_TOPK - 1  # frames a search scores exactly when the index search starves on a narrow filter
IDS_IN_FILTER = 2000  # a video filter keeping at most this many videos becomes a list of ids in the frame filter


def search_frames(store: VideoStore, query: np.ndarray, top_k: int, frames_per_video: int,
                  filter: str, video_filter: str, offset: int, collection: str = "frames") -> list[VideoHit]:
    """Find the videos whose frames (in `collection`: `frames`, or `windows` of frames) best match query,
    one hit per video, best first.

    `filter` is an expression over frame fields; `video_filter` one over video fields. A page
    holds `top_k` distinct videos after `offset` whenever that many match, however the frames
    are spread between videos: the search goes on in rounds of growing size, each leaving out
    the videos already ranked, until the page is full or no frame is left. The rounds are the
    same whatever the offset, and each ranks after the ones before, so every page is a slice of
    one ranking: consecutive pages neither overlap nor skip, even where an approximate index
    misses a near-tie.
    """
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    dim = store.dim_of(collection)
    if q.size != dim or top_k < 1 or frames_per_video < 1 or offset < 0:
        raise ValueError(f"need a query of dim {dim} (got {q.size}), top_k >= 1, "
                         "frames_per_video >= 1 and offset >= 0")
    wanted = offset + top_k
    filter, video_filter = _frame_filter(store, filter, video_filter)
    ranked: dict[str, list[FrameHit]] = {}  # every video met, in rank order (best frame first)
    kept: dict[str, VideoRecord] = {}  # those with a video row that passes video_filter
    for n in itertools.count():
        if len(kept) >= wanted:
            break
        left_out = all_of(filter, in_list("video_id", list(ranked), negate=True) if ranked else "")
        found = _search_round(store, collection, q, ROUND_VIDEOS << n, frames_per_video, left_out)
        groups = (group_frame_hits(found, MAX_TOPK, frames_per_video)
                  or _exact_groups(store, collection, q, frames_per_video, left_out))
        if not groups:
            break  # no frame left
        ranked.update(groups)  # after the rounds before: a later round's video never moves up a page
        kept.update(_rows_passing(store, list(groups), video_filter))
    if len(kept) < len(ranked) and not video_filter:
        log.warning("search skipped %d videos without a video row (orphans of an "
                    "interrupted add); run `reelbase repair`", len(ranked) - len(kept))
    order = [v for v in ranked if v in kept][offset:wanted]
    _complete_frames(store, collection, {v: ranked[v] for v in order}, q, frames_per_video, filter)
    return [VideoHit(kept[v], ranked[v][0].score, ranked[v][0].t, ranked[v]) for v in order]


def group_frame_hits(hits: list[dict], top_k: int, per_video: int) -> dict[str, list[FrameHit]]:
    """Group raw frame hits by video, best video and best frame first, keeping top_k videos."""
    groups: dict[str, list[FrameHit]] = {}
    for h in sorted(hits, key=lambda h: h["distance"], reverse=True):
        e = h["entity"]
        if e["video_id"] not in groups and len(groups) == top_k:
            continue
        frames = groups.setdefault(e["video_id"], [])
        if len(frames) < per_video:
            end = float(e["end"]) if "end" in e else None
            frames.append(FrameHit(int(e["index"]), float(e["t"]), float(h["distance"]), end))
    return groups


def _frame_filter(store: VideoStore, filter: str, video_filter: str) -> tuple[str, str]:
    """Move a video filter that keeps few videos into the frame filter, as the list of their ids (exact,
    one round); a broad one stays a check of each video found. Returns (frame filter, video filter)."""
    if not video_filter:
        return filter, ""
    rows = store.query_rows("videos", video_filter, ["video_id"], limit=IDS_IN_FILTER + 1)
    if len(rows) > IDS_IN_FILTER:
        return filter, video_filter
    return all_of(filter, in_list("video_id", sorted(r["video_id"] for r in rows))), ""


def _fields(collection: str) -> list[str]:
    """The fields a hit of `collection` reads."""
    return ["video_id", "index", "t", "end"] if collection == WINDOWS else ["video_id", "index", "t"]


def _search_round(store: VideoStore, collection: str, q: np.ndarray, videos: int, per_video: int, filter: str
                  ) -> list:
    """Frame hits of at least the best `videos` videos: grouped by video on the server where it can
    (Milvus Lite may return fewer groups), else frames over-fetched."""
    if store.group_by:
        limit = min(videos, MAX_TOPK // per_video)
        # strict_group_size is left at its default (off): Milvus Lite 3.2 reads False as on
        extra = {"group_by_field": "video_id", "group_size": per_video}
    else:
        limit, extra = min(videos * per_video * 4, MAX_TOPK), {}
    return store.search_rows(collection, q, limit, filter, _fields(collection), **extra)


def _exact_groups(store: VideoStore, collection: str, q: np.ndarray, per_video: int, filter: str
                  ) -> dict[str, list[FrameHit]]:
    """The frames left, scored exactly, grouped by video. For when an index search finds nothing: either
    nothing is left, or a filter leaves so few frames that the graph search starves (Milvus Lite's HNSW
    returns no rows then), which makes them few enough to score here."""
    rows = store.query_rows(collection, filter, [*_fields(collection), "embedding"], limit=EXACT_ROWS + 1)
    if len(rows) > EXACT_ROWS:
        log.warning("the index search found none of the %d+ frames left; the results end here", EXACT_ROWS)
        return {}
    scores = np.asarray([r["embedding"] for r in rows], np.float32).reshape(len(rows), q.size) @ q
    hits = [{"distance": float(score), "entity": row} for row, score in zip(rows, scores)]
    return group_frame_hits(hits, MAX_TOPK, per_video)


def _rows_passing(store: VideoStore, ids: list[str], video_filter: str) -> dict[str, VideoRecord]:
    """The records of these videos that exist and pass the video filter, by id."""
    records = store.get_videos(ids)
    if video_filter and records:
        keep = store.matching_ids(list(records), video_filter)
        records = {v: r for v, r in records.items() if v in keep}
    return records


def _complete_frames(store: VideoStore, collection: str, hits: dict[str, list[FrameHit]], q: np.ndarray,
                     per_video: int, filter: str) -> None:
    """Give each hit its `per_video` best frames where a round saw fewer (a video at the edge of an
    ungrouped round, or a short group from Milvus Lite): that video's frames scored exactly."""
    for video_id, frames in hits.items():
        if len(frames) < per_video:
            only = all_of(filter, f"video_id == {quote(video_id)}")
            frames[:] = _exact_groups(store, collection, q, per_video, only).get(video_id, frames)
