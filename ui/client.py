"""The UI's only way to the library: the reelbase HTTP API, at the address and with the key from settings."""

from __future__ import annotations

import os
from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with an error; `detail` is its message."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class ApiUnavailable(ApiError):
    """Nothing answers at the API address."""


class Api:
    """Typed calls to the reelbase API (one method per route the UI uses)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0,
                 public_url: str | None = None):
        self.base_url = (base_url or os.environ.get("REELBASE_API_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.public_url = (public_url or os.environ.get("REELBASE_PUBLIC_API_URL") or self.base_url).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("REELBASE_API_KEY", "")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    headers={"X-API-Key": self.api_key} if self.api_key else {})

    # --- plumbing ---

    def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ReadTimeout as exc:  # it answered the connection, then took too long: it is up and busy
            raise ApiError(504, f"the API took longer than {self._client.timeout.read:.0f} s to answer; it may "
                                "still be at work (a re-index or a duplicate scan of a large library takes "
                                "long). Reload later rather than asking again.") from exc
        except httpx.TransportError as exc:
            raise ApiUnavailable(0, f"cannot reach the reelbase API at {self.base_url} ({type(exc).__name__}). "
                                    "Start it with `reelbase serve`, or point REELBASE_API_URL at it.") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail if isinstance(detail, str) else str(detail))
        return response.json() if response.headers.get("content-type", "").startswith("application/json") \
            else response.content

    def url(self, link: str) -> str:
        """A media link from a response (a path on the API, signed by it when it has a key) at the address the
        browser reaches the API at (REELBASE_PUBLIC_API_URL): the browser fetches videos and frames itself."""
        return f"{self.public_url}{link}"

    # --- routes ---

    def health(self) -> dict:
        return self._call("GET", "/health")

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    def search_text(self, text: str, top_k: int = 12, offset: int = 0, filters: dict | None = None) -> dict:
        return self._call("POST", "/search/text", json={"text": text, "top_k": top_k, "offset": offset,
                                                        "filters": filters or {}})

    def search_image(self, data: bytes, name: str, top_k: int = 12, offset: int = 0,
                     filters: dict | None = None) -> dict:
        params = {"top_k": top_k, "offset": offset, **{k: v for k, v in (filters or {}).items() if v is not None}}
        return self._call("POST", "/search/image", files={"image": (name, data)}, params=params)

    def similar(self, video_id: str, top_k: int = 12) -> list[dict]:
        return self._call("POST", "/search/similar", json={"video_id": video_id, "top_k": top_k})

    def duplicates(self, threshold: float) -> dict:
        return self._call("GET", "/duplicates", params={"threshold": threshold})

    def videos(self, offset: int = 0, limit: int = 20, sort: str = "created_at", order: str = "desc",
               filters: dict | None = None) -> dict:
        params = {"offset": offset, "limit": limit, "sort": sort, "order": order,
                  **{k: v for k, v in (filters or {}).items() if v is not None}}
        return self._call("GET", "/videos", params=params)

    def video(self, video_id: str) -> dict:
        return self._call("GET", f"/videos/{video_id}")

    def delete(self, video_id: str) -> dict:
        return self._call("DELETE", f"/videos/{video_id}")

    def reindex(self) -> dict:
        return self._call("POST", "/library/reindex")

    def create_job(self, params: dict) -> dict:
        return self._call("POST", "/jobs", json=params)

    def reseed(self, params: dict) -> dict:
        return self._call("POST", "/reseed", json=params)

    def jobs(self, limit: int = 50) -> list[dict]:
        return self._call("GET", "/jobs", params={"limit": limit})["jobs"]

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict:
        return self._call("POST", f"/jobs/{job_id}/cancel")
