"""Telegram's limits: requests paced across channels, FloodWaits waited out in the open, faults sorted.

Every request tgmon makes of Telegram (resolving, joining, reading history, downloading) goes
through `Requests`: paced by a shared `Pacer`, so 500 channels at start do not trip limits; a
FloodWait is logged, counted and waited out, never slept through silently (Telethon's own
threshold is 0); network errors and Telegram's transient server errors are retried with
exponential backoff; a channel that went private or away raises `ChannelGone` with a reason an
operator can act on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from telethon import errors

from bot.logging import get_logger

log = get_logger("tgmon.telegram")

T = TypeVar("T")
RETRIES = 8
BACKOFF_CAP_S = 60.0

# FLOOD_WAIT_X, and FLOOD_PREMIUM_WAIT_X (what accounts without Premium get on downloads).
FLOOD_WAITS = (errors.FloodWaitError, errors.FloodPremiumWaitError)
UNAVAILABLE = (
    errors.ChannelPrivateError,
    errors.ChannelInvalidError,
    errors.ChannelBannedError,
    errors.UsernameNotOccupiedError,
    errors.UsernameInvalidError,
)
TRANSIENT = (OSError, ConnectionError, TimeoutError, errors.ServerError, errors.TimedOutError)


def unavailable_reason(exc: BaseException) -> str:
    """Why a channel cannot be followed, in words an operator can act on."""
    if isinstance(exc, errors.ChannelPrivateError | errors.ChannelBannedError):
        return "private, or the account was banned from it"
    if isinstance(exc, errors.ChannelInvalidError):
        return "no longer exists"
    if isinstance(exc, errors.UsernameNotOccupiedError):
        return "no channel has this username any more (renamed or deleted): give its numeric id"
    if isinstance(exc, errors.UsernameInvalidError):
        return "not a valid username"
    if isinstance(exc, ValueError):
        return f"unknown to this account: {exc}; give its @username"
    return f"{type(exc).__name__}: {exc}"


class ChannelGone(Exception):
    """The channel became private, was deleted or banned the account: stop following it."""

    def __init__(self, cause: BaseException) -> None:
        self.reason = unavailable_reason(cause)
        super().__init__(self.reason)
        self.cause = cause


class Pacer:
    """At most one request per `interval` seconds, across every caller."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self.interval


@dataclass(slots=True)
class FloodStats:
    """FloodWaits met: how many and how long, for logs, `/status` and metrics."""

    waits: int = 0
    seconds: float = 0.0
    by_request: dict[str, int] = field(default_factory=dict)

    def record(self, request: str, seconds: float) -> None:
        self.waits += 1
        self.seconds += seconds
        self.by_request[request] = self.by_request.get(request, 0) + 1


class Requests:
    """Runs one request at a time through the pacer, with FloodWaits and faults handled as above."""

    def __init__(self, pacer: Pacer, flood: FloodStats | None = None) -> None:
        self.pacer = pacer
        self.flood = flood if flood is not None else FloodStats()

    async def __call__(self, what: str, label: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = 1.0
        for attempt in range(1, RETRIES + 1):
            await self.pacer.wait()
            try:
                return await call()
            except FLOOD_WAITS as exc:
                self.flood.record(what, exc.seconds)
                log.warning("telegram.flood_wait", request=what, channel=label, seconds=exc.seconds, attempt=attempt)
                await asyncio.sleep(exc.seconds)
            except UNAVAILABLE as exc:
                raise ChannelGone(exc) from exc
            except TRANSIENT as exc:
                log.warning("telegram.network_error", request=what, channel=label, error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_S)
        raise ConnectionError(f"{what} for {label}: no answer after {RETRIES} attempts")
