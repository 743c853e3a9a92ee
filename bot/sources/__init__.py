"""Sources turn the outside world (Telegram, files) into `bot.models` events and know nothing of rules.

Each item may carry a cursor: where the source stood after producing it. The pipeline commits the
cursor in the same transaction as the event, so a restarted source resumes exactly where the archive
stops, whatever moment the process died at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.models import Event


@dataclass(slots=True)
class Cursor:
    source: str
    value: str


@dataclass(slots=True)
class SourceItem:
    """An event and/or the cursor just past it; `event=None` advances past input that was skipped.

    `catchup`: read from history after the fact rather than pushed live; alerts it raises say how
    late they are, and old ones are grouped into a digest.
    """

    event: Event | None
    cursor: Cursor | None = None
    catchup: bool = False


CursorLookup = Callable[[str], Awaitable[str | None]]


class Source(Protocol):
    name: str

    def items(self, cursors: CursorLookup) -> AsyncIterator[SourceItem]: ...
