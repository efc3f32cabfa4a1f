"""How the API is served: uvicorn, with deadlines on reading each request, so slow clients cannot hold it.

uvicorn times out only an idle keep-alive connection, and any byte that arrives resets that timer, so a
client that sends one byte a second keeps its connection (and its buffers) forever: the slowloris
attack. ASGI middleware cannot help, since the app is called only once the head has arrived. So the
deadlines live in the protocol: `DeadlineH11Protocol` is uvicorn's h11 protocol that drops a
connection whose request head is not in within `header_timeout_s` (from the connection's start or the
previous response's end), or whose body arrives slower than `body_timeout_s` plus one second per
`body_min_rate_kb` KiB received (Apache's mod_reqtimeout counts the same way). Only time spent waiting
on the client counts: not a response being worked out or streamed, nor a body the app has not yet read
(reading is paused then). `reelbase serve`, the compose stack (which runs it) and the tests all start
the API with `server_options`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from search.settings import Settings

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often a connection's deadline is looked at (at most; less for short timeouts)


@dataclass(frozen=True)
class ReadDeadlines:
    header_s: float  # a request's line and headers arrive within this
    body_s: float  # a body arrives within this ...
    body_min_rate: float  # ... plus one second per this many bytes received (bytes/s)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadDeadlines:
        return cls(settings.header_timeout_s, settings.body_timeout_s, settings.body_min_rate_kb * 1024)

    @property
    def tick_s(self) -> float:
        return min(TICK_S, self.header_s / 4, self.body_s / 4)


def server_options(settings: Settings) -> dict:
    """uvicorn's options for the API (beside host and port): its protocol reads requests under the deadlines."""
    deadlines = ReadDeadlines.from_settings(settings)
    # no WebSockets: the API has none, and an upgraded connection would leave this protocol's watch
    return {"http": partial(DeadlineH11Protocol, deadlines=deadlines), "ws": "none"}


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that drops a connection whose client is too slow to send its request.

    A connection is in one of three phases: the head (h11 waits for a request), the body (h11 reads a
    request's body) or the server's turn (the request is in; the response is worked out or streamed).
    The time a phase waits on the client is added up at each received chunk and every tick.
    """

    def __init__(self, *args, deadlines: ReadDeadlines, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines
        self._phase: tuple[str, object] | None = None  # ("head" | "body", the request cycle it belongs to)
        self._waited = 0.0  # seconds the phase has waited on the client
        self._received = 0  # bytes received in the phase
        self._charging = False  # whether the time since `_seen` is the client's
        self._seen = 0.0
        self._tick_handle = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._observe()
        self._tick_handle = self.loop.call_later(self.deadlines.tick_s, self._tick)

    def connection_lost(self, exc) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._observe()
        self._received += len(data)
        super().data_received(data)
        self._observe()  # the data may have ended the head (the body begins) or the body

    def _observe(self) -> None:
        """Add the time since the last look to the phase it was spent in; start counting afresh in a new phase."""
        now = self.loop.time()
        if self._charging:
            self._waited += now - self._seen
        self._seen = now
        phase = self._current_phase()
        if phase != self._phase:
            self._phase, self._waited, self._received = phase, 0.0, 0
        # the body's time is the client's only while we read: a paused read waits on the app
        self._charging = phase is not None and not (phase[0] == "body" and self.flow.read_paused)

    def _current_phase(self) -> tuple[str, object] | None:
        state = self.conn.their_state
        if state is h11.IDLE:
            return ("head", self.cycle)  # the cycle before it: each request's head is a phase of its own
        if state is h11.SEND_BODY:
            return ("body", self.cycle)
        return None

    def _tick(self) -> None:
        self._tick_handle = None
        if self.transport.is_closing():
            return
        self._observe()
        if self._overdue():
            self._drop()
            return
        self._tick_handle = self.loop.call_later(self.deadlines.tick_s, self._tick)

    def _overdue(self) -> bool:
        if self._phase is None:
            return False
        if self._phase[0] == "head":
            return self._waited > self.deadlines.header_s
        return self._waited > self.deadlines.body_s + self._received / self.deadlines.body_min_rate

    def _drop(self) -> None:
        client = ":".join(map(str, self.client)) if self.client else "a client"
        log.info("dropped %s, too slow to send its request's %s (%.0f s for %d bytes)",
                 client, self._phase[0], self._waited, self._received)
        self.transport.close()  # the app, if it waits on the body, sees the client leave
