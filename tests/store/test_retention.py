"""Media retention: old downloaded files go, their records with them; recent ones and posts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.store import MediaFile
from bot.store.retention import prune_media
from bot.store.sqlite import SQLiteStore


async def _file(store: SQLiteStore, data_dir: Path, message_id: int, relative: str) -> Path:
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"jpeg")
    record = MediaFile(-1001, message_id, 0, relative, "00" * 32, 4)
    await store.write(lambda tx: tx.add_media_file(record))
    return path


async def test_files_past_retention_are_deleted_with_their_records(store: SQLiteStore, tmp_data_dir: Path) -> None:
    old = await _file(store, tmp_data_dir, 1, "media/chan/1.jpg")
    recent = await _file(store, tmp_data_dir, 2, "media/chan/2.jpg")
    # Both were downloaded just now: seen from eight days on, both are older than a week.
    later = datetime.now(UTC) + timedelta(days=8)
    assert await prune_media(store, tmp_data_dir, timedelta(days=30), now=later) == 0
    assert old.exists()
    assert recent.exists()
    assert await prune_media(store, tmp_data_dir, timedelta(days=7), now=later) == 2
    assert not old.exists()
    assert not recent.exists()
    assert await prune_media(store, tmp_data_dir, timedelta(days=7), now=later) == 0


async def test_a_file_already_gone_still_has_its_record_forgotten(store: SQLiteStore, tmp_data_dir: Path) -> None:
    path = await _file(store, tmp_data_dir, 1, "media/chan/1.jpg")
    path.unlink()
    later = datetime.now(UTC) + timedelta(days=8)
    assert await prune_media(store, tmp_data_dir, timedelta(days=7), now=later) == 1


async def test_a_record_never_deletes_outside_the_data_directory(store: SQLiteStore, tmp_data_dir: Path) -> None:
    outside = tmp_data_dir.parent / "keep.txt"
    outside.write_text("not tgmon's")
    record = MediaFile(-1001, 9, 0, "../keep.txt", "00" * 32, 4)
    await store.write(lambda tx: tx.add_media_file(record))
    later = datetime.now(UTC) + timedelta(days=8)
    assert await prune_media(store, tmp_data_dir, timedelta(days=7), now=later) == 1
    assert outside.exists()
