"""Job event streams: one broadcaster per job, fanning out to its streams on the event loop.

The job queue's worker thread hands each change of a job to `JobEvents` (`JobQueue.add_listener`),
which passes it onto the event loop. There, the job's `Channel` keeps the newest state and wakes the
streams waiting on it; each stream is a coroutine, so an open stream holds no thread, and a crowd of
streams on one job costs another job's streams nothing. A stream that reads slowly skips to the
newest state rather than queueing states (a state replaces the ones before it). Each state is
rendered once for all the job's streams. At most `max_streams` streams are open at once; beyond it
`subscribe` raises `TooManyStreams`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse

from search.jobs import TERMINAL, Job, JobQueue

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10  # what a stream refused at the cap is told to wait
Render = Callable[[Job], str]  # a job's state as the text of one event


class TooManyStreams(Exception):
    """A stream asked for while `max_streams` are open; ask again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_S):
        super().__init__(message)
        self.retry_after = retry_after


class Channel:
    """One job's events: its newest state, shared by every stream on the job."""

    def __init__(self, job: Job):
        self.latest = job
        self.streams = 0
        self._changed = asyncio.Event()  # set, and replaced, on each newer state
        self._rendered: tuple[int, asyncio.Future[str]] | None = None  # (version, its text)

    def offer(self, job: Job) -> None:
        """Take `job` if it is newer than the state held, and wake the streams."""
        if job.version > self.latest.version:
            self.latest = job
            self._changed.set()
            self._changed = asyncio.Event()

    async def newer_than(self, version: int, timeout: float) -> Job:
        """The newest state once its version is not `version`; after `timeout`, the same state (a keep-alive)."""
        if self.latest.version == version:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self.latest

    async def text(self, job: Job, render: Render) -> str:
        """`render(job)`, once per version for all the streams (shielded: one stream's end cancels no other's)."""
        if self._rendered is None or self._rendered[0] != job.version:
            self._rendered = (job.version, asyncio.ensure_future(_render(job, render)))
        return await asyncio.shield(self._rendered[1])


async def _render(job: Job, render: Render) -> str:
    """An ended job's event names its clip, which takes a store lookup: that runs off the event loop."""
    if job.status in TERMINAL:
        return await asyncio.to_thread(render, job)
    return render(job)


class JobEvents:
    """The channels of the jobs that have open streams, fed from the job queue; at most `max_streams` streams."""

    def __init__(self, jobs: JobQueue, max_streams: int):
        self.max_streams = max_streams
        self.open_streams = 0
        self.channels: dict[str, Channel] = {}
        self._loop = asyncio.get_running_loop()
        jobs.add_listener(self._from_worker)

    def subscribe(self, job: Job) -> Subscription:
        """A stream on `job` (the state just read from the queue); TooManyStreams at the cap.

        Call it on the event loop with no await between reading `job` and this call: a change made after
        the read is then delivered after this call, so the stream misses none.
        """
        if self.open_streams >= self.max_streams:
            raise TooManyStreams(f"{self.max_streams} event streams are open, the most this service serves "
                                 f"(REELBASE_MAX_EVENT_STREAMS); ask again in {RETRY_AFTER_S} s or poll /jobs/{{id}}")
        channel = self.channels.get(job.job_id)
        if channel is None:
            channel = self.channels[job.job_id] = Channel(job)
        channel.offer(job)
        channel.streams += 1
        self.open_streams += 1
        return Subscription(self, job.job_id, channel)

    def release(self, job_id: str, channel: Channel) -> None:
        """Give a stream's place back (`Subscription.close` does); the channel goes with its last stream."""
        channel.streams -= 1
        self.open_streams -= 1
        if channel.streams == 0:
            del self.channels[job_id]

    def _from_worker(self, job: Job) -> None:
        """On the worker's thread: pass the change to the event loop."""
        try:
            self._loop.call_soon_threadsafe(self._publish, job)
        except RuntimeError:  # the loop has closed: the service is stopping, and no stream is left
            pass

    def _publish(self, job: Job) -> None:
        channel = self.channels.get(job.job_id)
        if channel is not None:
            channel.offer(job)


class Subscription:
    """One open stream on a job's channel; `close` gives its place back (once, however often it is called)."""

    def __init__(self, events: JobEvents, job_id: str, channel: Channel):
        self._events, self._job_id, self.channel = events, job_id, channel
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._events.release(self._job_id, self.channel)

    async def events(self, render: Render, keepalive_s: float) -> AsyncIterator[str]:
        """The job's states as event texts, from the current one until it ends; the same again after
        `keepalive_s` without a change (so a dead connection is noticed)."""
        version = -1
        while True:
            job = await self.channel.newer_than(version, keepalive_s)
            yield await self.channel.text(job, render)
            if job.status in TERMINAL:
                return
            version = job.version


class EventStreamResponse(StreamingResponse):
    """A subscription's events as server-sent events; its place is given back however the response ends
    (the job ended, the client left, the service stopped)."""

    media_type = "text/event-stream"

    def __init__(self, subscription: Subscription, render: Render, keepalive_s: float):
        super().__init__(subscription.events(render, keepalive_s), headers={"Cache-Control": "no-cache"})
        self.subscription = subscription

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()
