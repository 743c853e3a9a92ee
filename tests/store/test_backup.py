"""`backup()` of a live archive, the integrity check at open, and `optimize()`."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store.sqlite import DB_NAME, SQLiteStore, backup, open_store
from tests.conftest import close_store
from tests.helpers import apply, post

PAGE = 4096


def message_ids(database: Path) -> list[int]:
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute("SELECT message_id FROM posts ORDER BY message_id")]


def integrity(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]


async def restored(copy: Path, data_dir: Path) -> SQLiteStore:
    """The copy put in place as a data directory's archive, opened as tgmon would after a restore."""
    data_dir.mkdir()
    shutil.copy(copy, data_dir / DB_NAME)
    return await open_store(data_dir, create=False)


async def filled(data_dir: Path, posts: int) -> Path:
    """A closed archive of `posts` posts, big enough to span many pages."""
    store = await open_store(data_dir)
    try:
        await apply(store, [post(i, f"сообщение номер {i} о ракетной атаке " * 10) for i in range(1, posts + 1)])
    finally:
        await close_store(store)
    return data_dir / DB_NAME


# --- backup ---------------------------------------------------------------------------------------------


async def test_backup_while_the_store_is_written_is_consistent(store: SQLiteStore, tmp_path: Path) -> None:
    await apply(store, [post(i, f"сообщение номер {i} " * 40) for i in range(1, 3001)])  # a copy that takes a while
    written = 3000
    target = tmp_path / "copy.db"
    copying = asyncio.ensure_future(asyncio.to_thread(backup, store.path, target))
    at_start = written
    while not copying.done():  # one post per transaction, in order, while the copy runs
        written += 1
        await apply(store, [post(written, "во время копирования")])
    await copying
    during = written - at_start
    for _ in range(5):
        written += 1
        await apply(store, [post(written, "после копирования")])

    assert during >= 1, "no write committed while the backup ran: the test proved nothing"
    ids = message_ids(target)
    # The archive as of one moment: every post up to some point, none missing, none after the copy ended.
    assert ids == list(range(1, len(ids) + 1))
    assert at_start <= len(ids) < written
    assert integrity(target) == ["ok"]
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("copy", ".copy"))) == ["copy.db"]

    copy = await restored(target, tmp_path / "restored")
    try:
        assert (await copy.stats())["posts"] == len(ids)
        await copy.flush()  # the search index is not in the backup: rebuilt from the posts
        assert len(await copy.search('"копирования"', None, None, 10_000)) == len(ids) - 3000
    finally:
        await close_store(copy)
    assert (await store.stats())["posts"] == written  # the live archive went on meanwhile


async def test_backup_is_private_even_over_a_readable_file(store: SQLiteStore, tmp_path: Path) -> None:
    await apply(store, [post(1, "один")])
    target = tmp_path / "copy.db"
    target.write_bytes(b"an older backup")
    target.chmod(0o644)
    backup(store.path, target)
    assert target.stat().st_mode & 0o777 == 0o600
    assert message_ids(target) == [1]


async def test_failed_backup_leaves_the_last_good_one(tmp_path: Path) -> None:
    source = tmp_path / "data" / DB_NAME
    source.parent.mkdir()
    source.write_bytes(b"this is not a database, just some text " * 200)
    target = tmp_path / "copy.db"
    target.write_bytes(b"the last good backup")
    with pytest.raises(StoreError) as raised:
        backup(source, target)
    assert str(source) in str(raised.value)
    assert target.read_bytes() == b"the last good backup"
    assert not (tmp_path / ".copy.db.partial").exists()


async def test_damaged_source_fails_the_check_and_leaves_the_target(tmp_path: Path) -> None:
    source = await filled(tmp_path / "data", 400)
    with source.open("r+b") as handle:  # garbage over pages 3-6 (page 1, the header, stays whole)
        handle.seek(2 * PAGE)
        handle.write(b"\xde\xad\xbe\xef garbage " * (4 * PAGE // 16))
    target = tmp_path / "copy.db"
    target.write_bytes(b"the last good backup")
    with pytest.raises(StoreError, match=r"integrity check|damaged"):
        backup(source, target)
    assert target.read_bytes() == b"the last good backup"
    assert not (tmp_path / ".copy.db.partial").exists()


async def test_backup_into_a_missing_folder(store: SQLiteStore, tmp_path: Path) -> None:
    target = tmp_path / "gone" / "copy.db"
    with pytest.raises(StoreError, match="cannot write the backup: No such file or directory") as raised:
        backup(store.path, target)
    assert str(target) in str(raised.value)
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
async def test_backup_onto_the_live_database_is_refused(store: SQLiteStore, spelling: str) -> None:
    await apply(store, [post(1, "один")])
    target = {
        "same": store.path,
        "dotted": store.path.parent / ".." / store.path.parent.name / DB_NAME,
        "symlink": store.path.parent / "link.db",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(store.path)
    with pytest.raises(StoreError, match="that is the live database"):
        backup(store.path, target)
    await apply(store, [post(2, "два")])  # the archive is as it was, and still works
    assert (await store.stats())["posts"] == 2
    assert not list(store.path.parent.glob("*.partial"))


def test_backup_of_a_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no archive here yet"):
        backup(tmp_path / "data" / DB_NAME, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()
    assert not (tmp_path / ".copy.db.partial").exists()


# --- the integrity check at open ------------------------------------------------------------------------


@pytest.mark.parametrize("first_page", [2, 20], ids=["found-by-quick-check", "found-by-reading"])
async def test_damaged_archive_is_refused_at_open(tmp_path: Path, first_page: int) -> None:
    good = await filled(tmp_path / "good", 400)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copy(good, damaged / DB_NAME)
    with (damaged / DB_NAME).open("r+b") as handle:
        handle.seek(first_page * PAGE)
        handle.write(b"\xde\xad\xbe\xef garbage " * (4 * PAGE // 16))
    before = (damaged / DB_NAME).read_bytes()
    with pytest.raises(StoreError) as raised:
        await open_store(damaged)
    message = str(raised.value)
    assert "damaged" in message
    assert str(damaged / DB_NAME) in message
    assert (damaged / DB_NAME).read_bytes() == before  # refused, not added to
    assert not (damaged / "search.db").exists()


async def test_damaged_archive_message_is_one_line(tmp_path: Path) -> None:
    good = await filled(tmp_path / "good", 400)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copy(good, damaged / DB_NAME)
    with (damaged / DB_NAME).open("r+b") as handle:
        handle.seek(2 * PAGE)
        handle.write(b"\xde\xad\xbe\xef garbage " * (4 * PAGE // 16))
    with pytest.raises(StoreError) as raised:
        await open_store(damaged)
    assert "\n" not in str(raised.value)


async def test_sound_archive_opens_after_the_check(tmp_path: Path) -> None:
    good = await filled(tmp_path / "data", 50)
    store = await open_store(good.parent, create=False)
    try:
        assert (await store.stats())["posts"] == 50
    finally:
        await close_store(store)


# --- optimize -------------------------------------------------------------------------------------------


async def test_optimize_runs_and_the_store_goes_on(store: SQLiteStore) -> None:
    await apply(store, [post(i, f"пост {i}") for i in range(1, 101)])
    await store.search('"пост"', None, None, 10)
    await asyncio.gather(store.optimize(), apply(store, [post(101, "во время")]))
    await store.optimize()
    await apply(store, [post(102, "после")])
    assert (await store.stats())["posts"] == 102
