"""Where alerts go. A notifier gets the alert object and returns the id it got remotely, if any.

Notifiers know nothing of storage: the dispatcher (`outbox.py`) feeds them and records the result.
Raising `PermanentError` dead-letters the alert; `RetryAfter` is retried after the wait the remote
asked for (Telegram's FloodWait, HTTP 429 Retry-After); any other exception is retried with
backoff. Beyond `send`, a notifier may digest late alerts, reply to the alert an all-clear ends, and
edit a sent alert when more channels carry it: the dispatcher uses what it offers.

The alert object is the one in `alerts.jsonl` plus `delayed_s`: seconds between the alert being
raised and this delivery (large after a notifier outage).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import orjson
from rich.console import Console
from rich.text import Text

from bot.alerts.format import render_console, render_digest

_TAIL_BYTES = 1 << 20


class PermanentError(Exception):
    """Retrying cannot help (rejected payload, unknown chat): dead-letter the alert."""


class RetryAfter(Exception):
    """Transient, and the remote said when to try again (FloodWait, HTTP 429 with Retry-After)."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds:g} s")
        self.seconds = seconds


class Notifier(Protocol):
    name: str

    async def send(self, alert: Mapping[str, Any]) -> str | None: ...

    async def close(self) -> None: ...


@runtime_checkable
class DigestNotifier(Notifier, Protocol):
    """A notifier that can say many late alerts in one message."""

    async def send_digest(self, alerts: Sequence[Mapping[str, Any]]) -> str | None: ...


@runtime_checkable
class ReplyingNotifier(Notifier, Protocol):
    """A notifier that can send an all-clear as a reply to the alert it ends (by that alert's remote id)."""

    async def send_reply(self, alert: Mapping[str, Any], reply_to: str) -> str | None: ...


@runtime_checkable
class EditingNotifier(Notifier, Protocol):
    """A notifier that can change a sent alert, e.g. to list every channel that carried it."""

    async def edit(self, remote_id: str, alert: Mapping[str, Any]) -> None: ...


class ConsoleNotifier:
    """Readable alerts on stdout, in colour on a terminal."""

    name = "console"

    def __init__(self, console: Console | None = None, tz: ZoneInfo | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.tz = tz or ZoneInfo("UTC")

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        self._print(render_console(alert, self.tz))
        return None

    async def send_digest(self, alerts: Sequence[Mapping[str, Any]]) -> str | None:
        self._print(render_digest(alerts, self.tz))
        return None

    def _print(self, text: Text) -> None:
        """Styled on a terminal; elsewhere (a pipe, a log file) the plain text, without rich's
        rendering, which costs a replay of thousands of alerts a second of CPU."""
        if self.console.is_terminal:
            self.console.print(text)
        else:
            self.console.file.write(text.plain + "\n")

    async def close(self) -> None:
        return None


class JsonlNotifier:
    """One alert per line in `alerts.jsonl`; never writes an alert twice, even after a crash.

    The dispatcher may retry an alert whose line was written just before the process died; the ids
    found in the file's last megabyte, read once at start, catch exactly those.
    """

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: set[str] | None = None
        self._handle: BinaryIO | None = None
        self._torn = False

    def _ends_torn(self) -> bool:
        with self.path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def _tail_ids(self) -> set[str]:
        ids: set[str] = set()
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - _TAIL_BYTES))
                for line in handle.read().splitlines():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and isinstance(record.get("id"), str):
                        ids.add(record["id"])
        except FileNotFoundError:
            pass
        return ids

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        if self._written is None or self._handle is None:
            self._written = self._tail_ids()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab")
            self._torn = self._ends_torn()
        if alert["id"] in self._written:
            return None
        # A line cut short (full disk, crash mid-write) is closed first, so the next one stays readable.
        line = (b"\n" if self._torn else b"") + orjson.dumps(alert) + b"\n"
        try:
            # Flushed at once: a line in the OS's hands survives the process dying before it is recorded.
            self._handle.write(line)
            self._handle.flush()
        except OSError:
            self._torn = True
            raise
        self._torn = False
        self._written.add(str(alert["id"]))
        return None

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
