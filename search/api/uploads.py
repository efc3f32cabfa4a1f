"""Uploads read from the request stream as they arrive: checked by their first bytes, then kept or written once.

FastAPI fills an `UploadFile` before the route runs: Starlette parses the whole multipart body into a
SpooledTemporaryFile (memory up to 1 MB, then a temp file). A 500 MB junk body to `/videos` was thus
written in full, then copied into `uploads/`, before a check of its first 512 bytes refused it; a query
image was then read whole into memory. The upload routes read `request.stream()` themselves instead, with
the parser Starlette uses (python-multipart): the file field's first bytes are checked as soon as they
arrive (a query image by `search.images.image_format`, a video by `indexer.probe.sniff_head`), a file
past its limit is cut off there, and a refused upload's connection is closed rather than read on. The
form stays the API's (one file field, `image` or `file`), and the API key is checked before any of this
(a router dependency), so no body is read for a request without it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from common.files import temp_path
from indexer.probe import HEAD_BYTES, describe_head, sniff_head
from search import images
from search.params import shown

FORM_OVERHEAD = 64 * 1024  # bytes a multipart body may hold besides its file: boundaries, part headers, fields


def multipart_form(field: str, description: str) -> dict:
    """The OpenAPI request body of a route that reads its one-file multipart form itself (`openapi_extra`)."""
    schema = {"type": "object", "required": [field],
              "properties": {field: {"type": "string", "format": "binary", "description": description}}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def refused(status: int, detail: str) -> HTTPException:
    """An upload refused before its body is read to the end; the connection closes, so the rest is never read."""
    return HTTPException(status, detail, headers={"Connection": "close"})


async def receive_image(request: Request, field: str, limit: int) -> bytes:
    """A query image's bytes, held in memory (at most `limit`): 415 from its first bytes when it is no image."""

    def check(head: bytes) -> None:
        if images.image_format(head) is None:
            raise refused(415, f"the upload is not an image (a query image is {', '.join(images.FORMATS)}; "
                               "checked by its first bytes, not by its name)")

    part = FilePart(request, field, limit, "REELBASE_MAX_QUERY_IMAGE_MB")
    data = bytearray()
    async for chunk in checked(part.chunks(), images.HEAD_BYTES, check):
        data += chunk
    return bytes(data)


async def receive_video(request: Request, field: str, folder: Path, limit: int) -> Path:
    """A video upload written once, into a fresh temp folder under `folder` (named by this process, so a
    restart removes what a killed one left) under its sanitised name. The file is opened only when its first
    bytes show a video: 415 otherwise, with nothing written."""
    part = FilePart(request, field, limit, "REELBASE_MAX_UPLOAD_MB")

    def check(head: bytes) -> None:
        if sniff_head(head) is None:
            raise refused(415, f"{shown(part.filename or 'the upload')} is not a video file ({describe_head(head)}; "
                               "checked by content, not by name)")

    chunks = checked(part.chunks(), HEAD_BYTES, check)
    first = await anext(chunks)
    path = _upload_path(folder, part.filename)
    try:
        with open(path, "wb") as out:
            await run_in_threadpool(out.write, first)
            async for chunk in chunks:
                await run_in_threadpool(out.write, chunk)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return path


def _upload_path(folder: Path, filename: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    temp = temp_path(folder / "upload")
    temp.mkdir(mode=0o700)
    return temp / safe_name(filename)


def safe_name(name: str | None) -> str:
    """A file name with no directories and no odd characters."""
    base = Path((name or "upload").replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .") or "upload"
    return base[:120]


async def checked(chunks: AsyncIterator[bytes], head_bytes: int, check: Callable[[bytes], None]
                  ) -> AsyncIterator[bytes]:
    """`chunks`, held back until the first `head_bytes` have arrived (or the file ended) and `check` took them."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= head_bytes:
            break
    check(head[:head_bytes])
    yield head
    async for chunk in chunks:
        yield chunk


class FilePart:
    """The file field `field` of a multipart request, parsed from the request stream as it arrives."""

    def __init__(self, request: Request, field: str, limit: int, setting: str):
        self.request, self.field, self.limit, self.setting = request, field, limit, setting
        self.filename: str | None = None
        self._header = (b"", b"")  # the part header being read: its name, its value
        self._disposition = b""  # the Content-Disposition of the part being read
        self._ours = self._found = self._ended = False  # the part being read is the field; it was seen; it ended
        self._arrived: list[bytes] = []  # the file's bytes parsed from the last piece of the body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive: 413 past the limit, 415 for a body that is no multipart form, 400
        for a malformed one, 422 for a form without the field. Nothing after the file is read."""
        parser = MultipartParser(self._boundary(), self._callbacks())
        self._refuse_declared_length()
        received = size = 0
        async for piece in self._body():
            received += len(piece)
            if received > self.limit + FORM_OVERHEAD:
                raise self._too_large()
            try:
                parser.write(piece)
            except MultipartParseError as exc:
                raise refused(400, f"the body is not a well-formed multipart form ({shown(str(exc))})") from None
            for data in self._arrived:
                size += len(data)
                if size > self.limit:
                    raise self._too_large()
                yield data
            self._arrived.clear()
            if self._ended:
                return
        if not self._found:
            raise RequestValidationError([{"type": "missing", "loc": ("body", self.field), "msg": "Field required",
                                           "input": None}])
        raise refused(400, f"the body ends inside the {self.field} (a cut upload)")

    async def _body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; a client that goes away midway gets (were it there) a 400."""
        try:
            async for piece in self.request.stream():
                yield piece
        except ClientDisconnect:
            raise refused(400, f"the client went away before the {self.field} had arrived") from None

    def _boundary(self) -> bytes:
        kind, options = parse_options_header(self.request.headers.get("content-type", ""))
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            raise refused(415, f"send the {self.field} as a multipart/form-data body with a file field "
                               f"'{self.field}'")
        return options[b"boundary"]

    def _refuse_declared_length(self) -> None:
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit + FORM_OVERHEAD:
            raise self._too_large()

    def _too_large(self) -> HTTPException:
        return refused(413, f"the {self.field} exceeds the upload limit of {self.limit} bytes ({self.setting})")

    # --- python-multipart's callbacks, called while it parses a piece of the body ----------------

    def _callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._disposition, self._ours = b"", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0] + data[start:end], self._header[1])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0], self._header[1] + data[start:end])

    def _header_end(self) -> None:
        name, value = self._header
        if name.lower() == b"content-disposition":
            self._disposition = value
        self._header = (b"", b"")

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._ours = not self._found and options.get(b"name") == self.field.encode()
        if self._ours:
            self._found = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._ours:
            self._arrived.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._ended = self._ended or self._ours
        self._ours = False
