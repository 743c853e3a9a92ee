"""asyncio helpers that stay correct under cancellation."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`; True if it was set.

    `asyncio.timeout`, not `wait_for`: on Python 3.11, `wait_for` can swallow a cancel that arrives
    just as the event is set, and a task meant to stop (the search indexer on close) runs on.
    """
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return False
    return True
