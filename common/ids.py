"""A library video's id, as every layer names it: the first ID_LENGTH hex digits of the sha256 of the
video file's bytes (indexer.ingest makes it), or a unique prefix of it of MIN_ID_PREFIX or more digits,
as git takes a commit's (the service resolves it)."""

from __future__ import annotations

ID_LENGTH = 32
MIN_ID_PREFIX = 4
ID_PATTERN = rf"^[0-9a-fA-F]{{{MIN_ID_PREFIX},{ID_LENGTH}}}$"  # a video id or a unique prefix of one
