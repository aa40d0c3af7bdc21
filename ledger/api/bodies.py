"""Request bodies within bounds: a size limit, at most a few large bodies in memory at once, and the memory
they took handed back to the operating system afterwards.

Parsing JSON into Python objects costs several times the body's size, so a handful of concurrent
maximum-size batches is what could exhaust the server; a semaphore keeps their number small, and the
others wait a little, then get 503 with Retry-After. glibc keeps freed heap memory in its arenas
(one per thread that allocated it); ``malloc_trim(0)`` after the last large request returns it.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from anyio import to_thread
from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, Receive, Scope, Send

from ledger.domain.errors import BodyTooLarge, Overloaded
from ledger.settings import Limits


def size_text(size: int) -> str:
    """``16 MiB`` for 16777216, ``1500 bytes`` for 1500: how a limit is named in messages."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


class _Slot:
    """Whether one request holds a large-body slot."""

    held = False


class BodyGate:
    """Reads POST bodies: refuses those over ``max_body_bytes``, lets ``max_large_bodies`` large ones in at once."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # asyncio primitives bind to the running loop on first use, not at creation (Python 3.10+).
        self._slots = asyncio.Semaphore(limits.max_large_bodies)
        self._large_in_flight = 0
        self.trim_pending = False

    @property
    def idle(self) -> bool:
        """True when no large body is being read or handled."""
        return self._large_in_flight == 0

    @asynccontextmanager
    async def body(self, request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
        """The request's body; a large one holds its slot until the block ends (parsing and appending)."""
        slot = _Slot()
        try:
            announced = request.content_length
            if announced is not None and announced > self.limits.max_body_bytes:
                raise self._too_large()
            if announced is not None and announced > self.limits.large_body_bytes:
                await self._acquire(slot)
            yield await self._read(request, slot)
        finally:
            if slot.held:
                self._release()

    async def _read(self, request: Request[Any, Any, Any], slot: _Slot) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            # Litestar enforces request_max_body_size (set to the same limit) on the bytes received too.
            async for chunk in request.stream():
                total += len(chunk)
                if total > self.limits.max_body_bytes:
                    raise self._too_large()
                if not slot.held and total > self.limits.large_body_bytes:
                    await self._acquire(slot)
                chunks.append(chunk)
        except RequestEntityTooLarge:
            raise self._too_large() from None
        return b"".join(chunks)

    def _too_large(self) -> BodyTooLarge:
        limit = size_text(self.limits.max_body_bytes)
        return BodyTooLarge(f"the body is over the {limit} limit; split the batch into smaller ones")

    async def _acquire(self, slot: _Slot) -> None:
        wait = self.limits.large_body_wait_seconds
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            retry = max(1, math.ceil(wait))
            msg = (
                f"{self.limits.max_large_bodies} requests over {size_text(self.limits.large_body_bytes)} are "
                f"being handled; retry in {retry} s"
            )
            raise Overloaded(msg, retry_after=retry) from None
        self._large_in_flight += 1
        slot.held = True

    def _release(self) -> None:
        self._large_in_flight -= 1
        self.trim_pending = True
        self._slots.release()


def _load_malloc_trim() -> Callable[[], None] | None:
    # glibc only; on musl or macOS there is nothing to call and nothing kept the same way.
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        # A refused batch leaves cycles behind (exception, traceback, the frames holding the parsed
        # events), and an idle server allocates nothing that would start the collector: collect first.
        gc.collect()
        trim(0)

    return release


malloc_trim = _load_malloc_trim()


class ReturnMemory:
    """ASGI middleware: after a request, if a large body was handled and none is in flight any more, give the
    freed heap back to the operating system.

    It runs outside Litestar's exception handling, so by then the response is sent and the request's
    objects (parsed events, an exception's traceback) are gone.
    """

    def __init__(self, app: ASGIApp, gate: BodyGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then trim if it is time to."""
        try:
            await self.app(scope, receive, send)
        finally:
            if self.gate.trim_pending and self.gate.idle and malloc_trim is not None:
                self.gate.trim_pending = False
                with suppress(Exception):
                    await to_thread.run_sync(malloc_trim)
