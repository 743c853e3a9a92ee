"""The full-text index (SQLite FTS5), in its own file `search.db`, kept up to date by its own connection.

Why apart from the archive: tokenizing Cyrillic is the most expensive thing the archive does
(FTS5 indexes about 10,000 posts a second here). Inside the archive's transactions it would cap
ingest at that and make every alert wait for it. In its own file it has its own lock, and its own
aiosqlite connection runs it on its own thread, beside the writer, on another core.

The index follows the archive by two cursors stored in the same transaction as the index rows: the
last post id indexed, and the last edit (`post_versions.id`) applied. So it never misses or repeats
a post, whenever the process dies; searches may lag ingest by a moment, and `catch_up()` waits for
it (replay does before it exits). search.db holds nothing the archive does not: delete it and it is
rebuilt.

The FTS5 table is contentless (the texts are in the archive): a quarter less CPU, half the size.
Removing a post's old entry then takes the exact text that was indexed, so `indexed` records which
version of each post the index holds; every version's text is in the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import aiosqlite

from bot.aio import wait_event
from bot.errors import StoreError
from bot.logging import get_logger

log = get_logger("tgmon.search")

SEARCH_DB = "search.db"
_SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5 (
    text, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS indexed (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS index_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO index_state VALUES ('posts', 0), ('edits', 0);
-- Merge segments less eagerly: a quarter less CPU while indexing, for slightly more segments to read.
INSERT INTO posts_fts (posts_fts, rank) VALUES ('automerge', 16);
PRAGMA user_version = {_SCHEMA_VERSION};
"""


def _folded(column: str) -> str:
    """ё folded to е, in the index and in queries, so either spelling finds both."""
    return f"replace(replace({column}, 'ё', 'е'), 'Ё', 'Е')"


_REINDEX = f"""
CREATE TEMP TABLE reindex AS
    SELECT DISTINCT p.id AS id, p.version AS current, i.version AS was
    FROM archive.post_versions v
    JOIN archive.posts p ON p.channel_id = v.channel_id AND p.message_id = v.message_id
    JOIN indexed i ON i.id = p.id
    WHERE v.id > :after AND v.id <= :upto AND i.version <> p.version;
INSERT INTO posts_fts (posts_fts, rowid, text)
    SELECT 'delete', r.id, {_folded("coalesce(o.text, p.text)")}
    FROM temp.reindex r JOIN archive.posts p ON p.id = r.id
    LEFT JOIN archive.post_versions o
        ON o.channel_id = p.channel_id AND o.message_id = p.message_id AND o.version = r.was;
INSERT INTO posts_fts (rowid, text)
    SELECT r.id, {_folded("p.text")} FROM temp.reindex r JOIN archive.posts p ON p.id = r.id;
UPDATE indexed SET version = r.current FROM temp.reindex r WHERE indexed.id = r.id;
"""
_STEP = 2000
CACHE_KIB = -32768  # 32 MB of page cache (negative: KiB), bounded whatever the archive's size
_IDLE_WAIT_S = 2.0


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute(f"PRAGMA cache_size = {CACHE_KIB}")
    except BaseException:
        await conn.close()  # its thread would otherwise keep the process from exiting
        raise
    return conn


class SearchIndexer:
    """Indexes what the archive stored; `run()` follows it, `catch_up()` waits until nothing is left."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self.wake = asyncio.Event()

    @classmethod
    async def open(cls, data_dir: Path, archive: Path) -> SearchIndexer:
        path = data_dir / SEARCH_DB
        try:
            conn = await cls._open_schema(path)
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc) and "malformed" not in str(exc):
                raise StoreError(f"{path}: cannot open the search index: {exc}") from None
            log.warning("search.rebuild", path=str(path), reason=str(exc))
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (path.parent / (path.name + suffix)).unlink()
            conn = await cls._open_schema(path)
        await conn.execute("ATTACH DATABASE ? AS archive", (str(archive),))
        return cls(conn, path)

    @staticmethod
    async def _open_schema(path: Path) -> aiosqlite.Connection:
        conn = await _connect(path)
        try:
            async with conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            if row and row[0] > _SCHEMA_VERSION:
                raise StoreError(f"{path}: a search index from a newer tgmon; delete it to rebuild it")
            await conn.executescript(_SCHEMA)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _state(self) -> tuple[int, int]:
        async with self._conn.execute("SELECT name, value FROM index_state") as cursor:
            values = {name: int(value) async for name, value in cursor}
        return values["posts"], values["edits"]

    async def step(self, limit: int = _STEP) -> int:
        """Index up to `limit` new posts and re-index posts edited since; how many posts were touched."""
        async with self._lock:
            conn = self._conn
            # A write first: it takes search.db's lock before the cursors are read, so two processes
            # indexing at once take turns instead of both reading the same cursor.
            await conn.execute("BEGIN")
            try:
                await conn.execute("UPDATE index_state SET value = value WHERE name = 'posts'")
                posts_done, edits_done = await self._state()
                touched = 0
                async with conn.execute(
                    "SELECT max(id), count(*) FROM (SELECT id FROM archive.posts WHERE id > ? ORDER BY id LIMIT ?)",
                    (posts_done, limit),
                ) as cursor:
                    high, count = await cursor.fetchone() or (None, 0)
                # Edits first: posts indexed further down take their current text and need none.
                async with conn.execute(
                    "SELECT max(id) FROM (SELECT id FROM archive.post_versions WHERE id > ? ORDER BY id LIMIT ?)",
                    (edits_done, limit),
                ) as cursor:
                    row = await cursor.fetchone()
                edits_high = row[0] if row else None
                if edits_high is not None:
                    touched += await self._reindex_edited(edits_done, edits_high)
                    await conn.execute("UPDATE index_state SET value = ? WHERE name = 'edits'", (edits_high,))
                if high is not None:
                    await conn.execute(
                        f"INSERT INTO posts_fts (rowid, text) SELECT p.id, {_folded('p.text')} FROM archive.posts p"
                        " WHERE p.id > ? AND p.id <= ?",
                        (posts_done, high),
                    )
                    await conn.execute(
                        "INSERT INTO indexed (id, version)"
                        " SELECT id, version FROM archive.posts WHERE id > ? AND id <= ?",
                        (posts_done, high),
                    )
                    await conn.execute("UPDATE index_state SET value = ? WHERE name = 'posts'", (high,))
                    touched += count
                await conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                raise
        return touched

    async def _reindex_edited(self, after: int, upto: int) -> int:
        """Indexed posts whose text changed: the entry of the indexed version out, the current text in."""
        await self._conn.execute("DROP TABLE IF EXISTS temp.reindex")
        for statement in _REINDEX.strip().split(";\n"):
            await self._conn.execute(statement, {"after": after, "upto": upto})
        async with self._conn.execute("SELECT count(*) FROM temp.reindex") as cursor:
            row = await cursor.fetchone()
        await self._conn.execute("DROP TABLE temp.reindex")
        return int(row[0]) if row else 0

    async def lag(self) -> int:
        """Posts stored but not yet searchable."""
        posts_done, _ = await self._state()
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM archive.posts") as cursor:
            row = await cursor.fetchone()
        return max(0, int(row[0]) - posts_done) if row else 0

    async def catch_up(self) -> None:
        while await self.step():
            pass

    async def run(self) -> None:
        """Follow the archive until cancelled; the store sets `wake` after each commit."""
        while True:
            try:
                indexed = await self.step()
            except (sqlite3.Error, StoreError) as exc:
                log.error("search.index_failed", error=str(exc), retry_in_s=_IDLE_WAIT_S)
                indexed = 0
            if indexed:
                continue
            await wait_event(self.wake, _IDLE_WAIT_S)
            self.wake.clear()

    async def close(self) -> None:
        await self._conn.close()
