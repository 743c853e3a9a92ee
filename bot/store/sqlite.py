"""SQLite backend: WAL, forward-only migrations, one writer thread batching transactions.

Writes: jobs submitted through `write()` run on one thread that owns the write connection, several
jobs per transaction, each in its own savepoint so one failing job does not undo the others
(`sqlite_tx.py` says why that thread is synchronous). Reads use their own aiosqlite connection and so
only ever see committed data: the outbox dispatcher never reads an alert whose post was rolled back.
The full-text index lives apart, in search.db (`search.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import orjson

from bot.errors import StoreError
from bot.logging import get_logger
from bot.models import Event
from bot.store import ChannelRecord, Delivery, WriteTx
from bot.store.search import CACHE_KIB, SearchIndexer
from bot.store.sqlite_tx import PreparedBatch, SQLiteTx, iso, prepare_batch

T = TypeVar("T")
log = get_logger("tgmon.store")

DB_NAME = "tgmon.db"
_MAX_JOBS_PER_TX = 64
_BUSY_TIMEOUT_MS = 5000


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _explain(path: Path, exc: sqlite3.Error) -> StoreError:
    """Turn SQLite's terse errors into a line that says what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{path}: the database is locked by another process (is `tgmon run` already running "
            "on this data directory?); stop it or use another --data-dir"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{path}: not a tgmon database or damaged ({text}); move it aside or restore a backup")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"{path}: the database is read-only; check the data directory's permissions")
    if "full" in text:
        return StoreError(f"{path}: the disk is full; free space and run again (nothing stored was lost)")
    if "unable to open" in text:
        return StoreError(f"{path}: cannot open the database; check that the data directory is writable")
    return StoreError(f"{path}: database error: {text}")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    migrations = _migrations()
    latest = migrations[-1][0]
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > latest:
        raise StoreError(
            f"{path}: written by a newer tgmon (schema {current}, this version knows {latest});"
            " upgrade tgmon or restore a backup made by this version"
        )
    if current == 0 and conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
        raise StoreError(f"{path}: an SQLite database, but not tgmon's; point --data-dir elsewhere")
    for number, script in migrations:
        if number <= current:
            continue
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        log.info("store.migrated", path=str(path), schema=number)


def _check_rows(rows: Iterable[Sequence[Any]]) -> list[str]:
    """An integrity check's findings as single lines (a row may hold several, and a heading)."""
    lines = (line.strip() for row in rows for line in str(row[0]).splitlines())
    return [line for line in lines if line and not line.startswith("***")]


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """`PRAGMA quick_check` before anything is written: a damaged archive is refused, not added to."""
    started = time.monotonic()
    problems = _check_rows(conn.execute("PRAGMA quick_check(5)"))
    if problems != ["ok"]:
        raise StoreError(
            f"{path}: the database is damaged ({'; '.join(problems)}); restore a backup made with"
            " `tgmon backup`, or move the file aside to start a new archive"
        )
    log.info("store.checked", path=str(path), seconds=round(time.monotonic() - started, 3))


def backup(source: Path, target: Path) -> None:
    """Copy a live archive with SQLite's online backup API, check the copy, and give it mode 0600.

    The copy is one read transaction: in WAL mode the service's writes go on meanwhile, and the copy
    is the archive as of its start. It is written beside `target` and renamed over it only once
    checked, so a backup that fails never leaves half a file, nor spoils the last good one.
    """
    if not source.exists():
        raise StoreError(f"{source}: no archive here yet; pass --data-dir pointing at an existing data directory")
    if target.resolve() == source.resolve():
        raise StoreError(f"{target}: that is the live database; back it up to another path")
    partial = target.with_name(f".{target.name}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        live = sqlite3.connect(source, timeout=_BUSY_TIMEOUT_MS / 1000)
        try:
            copy = sqlite3.connect(partial)
            try:
                live.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                problems = _check_rows(copy.execute("PRAGMA integrity_check(5)"))
            finally:
                copy.close()
        finally:
            live.close()
        if problems != ["ok"]:
            raise StoreError(f"{source}: the copy failed its integrity check ({'; '.join(problems)})")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise _explain(source, exc) from None
    except OSError as exc:
        raise StoreError(f"{target}: cannot write the backup: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def _open_writer(path: Path) -> sqlite3.Connection:
    """Runs on the writer thread: connect, WAL, migrate."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = {CACHE_KIB}")
        # Checkpoint every 40 MB of WAL instead of 4: pages written again meanwhile are copied once.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        _check_integrity(conn, path)
        _migrate(conn, path)
        conn.execute("PRAGMA optimize = 0x10002")  # SQLite's advice for a connection that lives long
    except BaseException:
        conn.close()
        raise
    return conn


_Outcome = tuple[Any, BaseException | None]


class SQLiteStore:
    """The default `Store`. Open it with `open_store`."""

    def __init__(
        self,
        path: Path,
        executor: ThreadPoolExecutor,
        writer: sqlite3.Connection,
        reader: aiosqlite.Connection,
        indexer: SearchIndexer,
    ) -> None:
        self.path = path
        self._executor = executor
        self._writer = writer
        self._reader = reader
        self._indexer = indexer
        self._jobs: asyncio.Queue[tuple[Callable[[WriteTx], Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run_writer(), name="store-writer")
        self._index_task = asyncio.create_task(indexer.run(), name="search-indexer")

    def prepare(self, events: Sequence[Event]) -> PreparedBatch:
        return prepare_batch(events)

    async def write(self, job: Callable[[WriteTx], T]) -> T:
        """Run `job` on the writer thread, in the next transaction, and return its result."""
        if self._task.done():
            raise StoreError(f"{self.path}: the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._jobs.put((job, future))
        return await future

    async def _run_writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._jobs.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _MAX_JOBS_PER_TX and not self._jobs.empty():
                item = self._jobs.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            jobs = [job for job, _ in batch]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, jobs)
            except sqlite3.Error as exc:
                log.error("store.commit_failed", path=str(self.path), error=str(exc), jobs=len(batch))
                error = _explain(self.path, exc)
                outcomes = [(None, error)] * len(batch)
            except Exception as exc:  # a lone job's own error (it ran without a savepoint): its caller's
                outcomes = [(None, exc)] * len(batch)
            else:
                self._indexer.wake.set()
            for (_, future), (result, failure) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if failure is not None:
                    future.set_exception(
                        _explain(self.path, failure) if isinstance(failure, sqlite3.Error) else failure
                    )
                else:
                    future.set_result(result)
            if stop:
                return

    def _commit(self, jobs: list[Callable[[WriteTx], Any]]) -> list[_Outcome]:
        """On the writer thread: one transaction, a savepoint per job (a single job needs none)."""
        conn = self._writer
        tx = SQLiteTx(conn)
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            if len(jobs) == 1:
                outcomes.append((jobs[0](tx), None))
            else:
                for job in jobs:
                    conn.execute("SAVEPOINT job")
                    try:
                        outcomes.append((job(tx), None))
                    except Exception as exc:
                        if not conn.in_transaction:
                            # SQLite rolled the whole transaction back itself (a full disk, an I/O error): the
                            # savepoint is gone, the other jobs' work too, and this error is the batch's.
                            raise
                        conn.execute("ROLLBACK TO job")
                        outcomes.append((None, exc))
                    conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return outcomes

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every read runs whole in one call to the reader's thread: a statement left open across an
        await pins the shared connection's snapshot, and an outbox worker reading meanwhile would see
        deliveries just marked sent as pending, and send them again."""
        return list(await self._reader.execute_fetchall(sql, params))

    async def get_cursor(self, source: str) -> str | None:
        rows = await self._rows("SELECT value FROM cursors WHERE source = ?", (source,))
        return str(rows[0][0]) if rows else None

    async def due_deliveries(self, destination: str, limit: int) -> list[Delivery]:
        rows = await self._rows(
            "SELECT d.alert_seq, a.id, d.attempts, d.next_attempt_at, a.payload, a.payload ->> '$.clears.id',"
            " (SELECT r.remote_id FROM alerts c JOIN deliveries r ON r.alert_seq = c.seq"
            "  AND r.destination = d.destination AND r.state = 'sent' WHERE c.id = a.payload ->> '$.clears.id')"
            " FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq WHERE d.destination = ? AND d.state = 'pending'"
            " ORDER BY d.alert_seq LIMIT ?",
            (destination, limit),
        )
        return [
            Delivery(destination, seq, alert_id, attempts, parse_time(next_at), orjson.loads(payload), reply_to, clears)
            for seq, alert_id, attempts, next_at, payload, clears, reply_to in rows
        ]

    async def recent_alerts(self, limit: int, category: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE category = ?", [category]) if category else ("", [])
        rows = await self._rows(
            f"SELECT payload, suppressed FROM alerts {where} ORDER BY seq DESC LIMIT ?", (*params, limit)
        )
        return [{**orjson.loads(payload), "suppressed": suppressed} for payload, suppressed in rows]

    async def mutes(self, now: datetime) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT target, until, created_by FROM mutes WHERE until > ? ORDER BY until", (iso(now),)
        )
        return [{"target": t, "until": u, "created_by": by} for t, u, by in rows]

    async def stale_deliveries(self, destination: str, limit: int) -> list[Delivery]:
        rows = await self._rows(
            "SELECT d.alert_seq, a.id, d.attempts, a.payload, d.remote_id FROM deliveries d"
            " JOIN alerts a ON a.seq = d.alert_seq WHERE d.destination = ? AND d.stale = 1 AND d.state = 'sent'"
            " AND d.remote_id IS NOT NULL ORDER BY d.alert_seq LIMIT ?",
            (destination, limit),
        )
        return [
            Delivery(destination, seq, alert_id, attempts, None, orjson.loads(payload), remote_id=remote)
            for seq, alert_id, attempts, payload, remote in rows
        ]

    async def pending_deliveries(self, destinations: Sequence[str]) -> int:
        if not destinations:
            return 0
        marks = ",".join("?" * len(destinations))
        return int(
            await self._one(
                f"SELECT count(*) FROM deliveries WHERE state = 'pending' AND destination IN ({marks})",
                tuple(destinations),
            )
        )

    async def channel_records(self) -> list[ChannelRecord]:
        rows = await self._rows(
            "SELECT c.id, c.username, c.title, c.access_hash, c.available, c.unavailable_reason,"
            " (SELECT json_group_array(a.username) FROM channel_aliases a WHERE a.channel_id = c.id)"
            " FROM channels c ORDER BY c.id"
        )
        return [
            ChannelRecord(cid, username, title, access_hash, bool(available), reason, tuple(orjson.loads(aliases)))
            for cid, username, title, access_hash, available, reason, aliases in rows
        ]

    async def channel_overview(self) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT c.id, c.username, c.title, c.available, c.unavailable_reason, c.resolved_at,"
            " (SELECT count(*) FROM posts p WHERE p.channel_id = c.id),"
            " (SELECT max(date) FROM posts p WHERE p.channel_id = c.id)"
            " FROM channels c ORDER BY c.id"
        )
        keys = ("id", "username", "title", "available", "unavailable_reason", "resolved_at", "posts", "last_post")
        return [{**dict(zip(keys, row, strict=True)), "available": bool(row[3])} for row in rows]

    async def message_ids(self, channel_id: int, since: datetime, limit: int) -> list[int]:
        rows = await self._rows(
            "SELECT p.message_id FROM posts p WHERE p.channel_id = ? AND p.date >= ? AND p.message_id > 0"
            " AND NOT EXISTS (SELECT 1 FROM deletions d WHERE d.channel_id = p.channel_id"
            " AND d.message_id = p.message_id) ORDER BY p.message_id DESC LIMIT ?",
            (channel_id, iso(since), limit),
        )
        return [int(row[0]) for row in rows]

    async def missing_ids(self, channel_id: int, low: int, high: int, limit: int) -> list[int]:
        rows = await self._rows(
            "WITH RECURSIVE ids(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM ids WHERE n < ?)"
            " SELECT n FROM ids WHERE NOT EXISTS (SELECT 1 FROM posts WHERE channel_id = ? AND message_id = n)"
            " AND NOT EXISTS (SELECT 1 FROM deletions WHERE channel_id = ? AND message_id = n)"
            " AND NOT EXISTS (SELECT 1 FROM absent_messages WHERE channel_id = ? AND message_id = n)"
            " ORDER BY n DESC LIMIT ?",
            (max(low, 1), high, channel_id, channel_id, channel_id, limit),
        )
        return [int(row[0]) for row in rows]

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._rows(sql, params)
        return rows[0][0] if rows else None

    async def _pairs(self, sql: str) -> dict[str, int]:
        return {str(key): int(count) for key, count in await self._rows(sql)}

    async def stats(self) -> dict[str, Any]:
        counts = {}
        for name, table in (
            ("posts", "posts"),
            ("channels", "channels"),
            ("media", "media"),
            ("edits", "post_versions"),
            ("deletions", "deletions"),
            ("alerts", "alerts"),
        ):
            counts[name] = int(await self._one(f"SELECT count(*) FROM {table}"))
        first, last = (await self._rows("SELECT min(date), max(date) FROM posts") or [(None, None)])[0]
        deliveries: dict[str, dict[str, int]] = defaultdict(dict)
        for destination, state, count in await self._rows(
            "SELECT destination, state, count(*) FROM deliveries GROUP BY destination, state"
        ):
            deliveries[destination][state] = int(count)
        return {
            **counts,
            "alerts_by_category": await self._pairs(
                "SELECT category, count(*) FROM alerts GROUP BY category ORDER BY count(*) DESC"
            ),
            "media_by_kind": await self._pairs("SELECT kind, count(*) FROM media GROUP BY kind ORDER BY count(*) DESC"),
            "deliveries": dict(deliveries),
            "pending_deliveries": sum(d.get("pending", 0) for d in deliveries.values()),
            "dead_letters": sum(d.get("dead", 0) for d in deliveries.values()),
            "first_post": first,
            "last_post": last,
            "search_lag": await self._indexer.lag(),
            "database": str(self.path),
            "database_bytes": _size(self.path),
        }

    async def search(self, query: str, channel: str | None, since: datetime | None, limit: int) -> list[dict[str, Any]]:
        sql = (
            "SELECT p.channel_id, c.username, c.title, p.message_id, p.date, p.text"
            " FROM search.posts_fts f JOIN posts p ON p.id = f.rowid LEFT JOIN channels c ON c.id = p.channel_id"
            " WHERE posts_fts MATCH ?"
        )
        params: list[Any] = [query.replace("ё", "е").replace("Ё", "Е")]  # folded like the index
        if since is not None:
            sql += " AND p.date >= ?"
            params.append(iso(since))
        if channel is not None:
            ref = channel.removeprefix("@")
            sql += " AND (lower(c.username) = lower(?) OR CAST(p.channel_id AS TEXT) = ? OR c.title = ?)"
            params.extend([ref, ref, channel])
        sql += " ORDER BY p.date DESC, p.id DESC LIMIT ?"
        params.append(limit)
        try:
            rows = await self._rows(sql, params)
        except sqlite3.OperationalError as exc:
            if any(word in str(exc) for word in ("fts5", "syntax", "unterminated", "no such column")):
                raise StoreError(f"search query {query!r}: {exc}") from None
            raise _explain(self.path, exc) from None
        return [
            {
                "channel_id": cid,
                "channel_username": username,
                "channel_title": title,
                "message_id": mid,
                "date": date,
                "text": text,
            }
            for cid, username, title, mid, date, text in rows
        ]

    async def export(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        last_id = 0
        since_text = iso(since) if since else ""
        while True:
            rows = await self._rows(
                "SELECT p.id, p.channel_id, c.username, c.title, p.message_id, p.date, p.edit_date, p.text,"
                " p.entities, p.views, p.forwards, p.replies, p.reply_to, p.forward_from, p.grouped_id, p.author,"
                " p.version, d.deleted_at FROM posts p LEFT JOIN channels c ON c.id = p.channel_id"
                " LEFT JOIN deletions d ON d.channel_id = p.channel_id AND d.message_id = p.message_id"
                " WHERE p.id > ? AND p.date >= ? ORDER BY p.id LIMIT 1000",
                (last_id, since_text),
            )
            if not rows:
                return
            media: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
            for cid, mid, kind, mime, size, duration, width, height, file_name, path, sha in await self._rows(
                "SELECT m.channel_id, m.message_id, m.kind, m.mime_type, m.size, m.duration, m.width, m.height,"
                " m.file_name, f.path, f.sha256 FROM media m JOIN posts p ON p.channel_id = m.channel_id"
                " AND p.message_id = m.message_id LEFT JOIN media_files f ON f.channel_id = m.channel_id"
                " AND f.message_id = m.message_id AND f.position = m.position"
                " WHERE p.id > ? AND p.id <= ? ORDER BY m.position",
                (last_id, rows[-1][0]),
            ):
                item = {
                    "kind": kind,
                    "mime_type": mime,
                    "size": size,
                    "duration": duration,
                    "width": width,
                    "height": height,
                    "file_name": file_name,
                }
                if path is not None:  # downloaded (channels with download_media on)
                    item |= {"path": path, "sha256": sha}
                media[(cid, mid)].append(item)
            for (
                rowid,
                cid,
                username,
                title,
                mid,
                date,
                edit_date,
                text,
                entities,
                views,
                forwards,
                replies,
                reply_to,
                forward_from,
                grouped_id,
                author,
                version,
                deleted_at,
            ) in rows:
                yield {
                    "channel_id": cid,
                    "channel_username": username,
                    "channel_title": title,
                    "message_id": mid,
                    "date": date,
                    "edit_date": edit_date,
                    "text": text,
                    "entities": orjson.loads(entities) if entities else [],
                    "views": views,
                    "forwards": forwards,
                    "replies": replies,
                    "reply_to": reply_to,
                    "forward_from": orjson.loads(forward_from) if forward_from else None,
                    "grouped_id": grouped_id,
                    "author": author,
                    "deleted": deleted_at is not None,
                    "versions": version,
                    "media": media.get((cid, mid), []),
                }
                last_id = rowid

    async def optimize(self) -> None:
        """`PRAGMA optimize`, as SQLite advises a long-lived connection to run now and then: it
        refreshes the query planner's statistics where they went stale, and is quick otherwise."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.execute, "PRAGMA optimize")

    async def flush(self) -> None:
        """Wait until the search index has caught up with everything committed."""
        await self._indexer.catch_up()

    async def close(self) -> None:
        if not self._task.done():
            await self._jobs.put(None)
            await self._task
        self._index_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._index_task
        await self._indexer.close()
        await self._reader.close()
        with contextlib.suppress(sqlite3.Error):
            await self.optimize()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)


def _size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += (path.parent / (path.name + suffix)).stat().st_size
    return total


async def open_store(data_dir: Path, *, create: bool = True) -> SQLiteStore:
    """Open (and with `create`, make) the archive in `data_dir`, migrated to this version's schema."""
    path = data_dir / DB_NAME
    if not path.exists():
        if not create:
            raise StoreError(
                f"{path}: no archive here yet; run `tgmon replay FILE` or `tgmon run` first,"
                " or pass --data-dir pointing at an existing data directory"
            )
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"{data_dir}: cannot create the data directory: {exc.strerror}") from None
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tgmon-store-writer")
    writer: sqlite3.Connection | None = None
    reader: aiosqlite.Connection | None = None
    indexer: SearchIndexer | None = None
    try:
        writer = await loop.run_in_executor(executor, _open_writer, path)
        indexer = await SearchIndexer.open(data_dir, path)
        for made in (path, indexer.path):
            with contextlib.suppress(OSError):
                os.chmod(made, 0o600)
        reader = await aiosqlite.connect(path, isolation_level=None)
        await reader.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        await reader.execute("ATTACH DATABASE ? AS search", (str(indexer.path),))
    except (sqlite3.Error, StoreError) as exc:
        if reader is not None:
            await reader.close()
        if indexer is not None:
            await indexer.close()
        if writer is not None:
            await loop.run_in_executor(executor, writer.close)
        executor.shutdown(wait=False)
        if isinstance(exc, StoreError):
            raise
        raise _explain(path, exc) from None
    return SQLiteStore(path, executor, writer, reader, indexer)
