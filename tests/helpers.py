"""Helpers shared by the tests: paths, record builders, store shortcuts."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.models import Channel, Event, Post
from bot.rules.engine import Engine
from bot.rules.loader import build_engine, parse_rules
from bot.store import Outcome
from bot.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[1]
RULES_TOML = REPO / "config" / "rules.toml"
DEMO_LABELS = REPO / "tests" / "data" / "demo_labels.json"
SHARED_DATA = REPO / ".." / "shared" / "data"

T0 = datetime(2024, 3, 12, 3, 0, tzinfo=UTC)


def rules_engine(*rules: Mapping[str, Any]) -> Engine:
    """An engine from rule tables given as dicts, as they would appear in rules.toml."""
    return build_engine(parse_rules({"rule": [dict(r) for r in rules]}, "test.toml"))


def channel(cid: int = 1001, username: str | None = "chan_one", title: str | None = "Channel One") -> Channel:
    return Channel(cid, title, username)


def post(
    message_id: int,
    text: str = "",
    *,
    ch: Channel | None = None,
    minutes: int = 0,
    **fields: Any,
) -> Post:
    return Post(ch or channel(), message_id, T0 + timedelta(minutes=minutes), text, **fields)


async def apply(store: SQLiteStore, events: Sequence[Event]) -> list[Outcome]:
    return await store.write(lambda tx: tx.apply(list(events)))


async def apply_prepared(store: SQLiteStore, events: Sequence[Event]) -> list[Outcome]:
    batch = store.prepare(list(events))
    return await store.write(lambda tx: tx.apply_prepared(batch))


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any] | str | bytes]) -> Path:
    """Records as JSON lines; a str or bytes item is written as it is (for malformed lines)."""
    with path.open("wb") as handle:
        for record in records:
            if isinstance(record, bytes):
                handle.write(record)
            elif isinstance(record, str):
                handle.write(record.encode("utf-8", "surrogatepass"))
            else:
                handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def no_cursors(_: str) -> str | None:
    return None


def sqlite_worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name and t.is_alive()]


def stop_stray_sqlite_connections() -> int:
    """Stop aiosqlite connections nobody closed: their non-daemon threads would keep the process from exiting."""
    stray = [obj for obj in gc.get_objects() if isinstance(obj, aiosqlite.Connection) and obj._thread.is_alive()]
    for connection in stray:
        connection.stop()
    for connection in stray:
        connection._thread.join(timeout=10)
    return len(stray)
