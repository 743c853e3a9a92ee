"""Optional retention: media files downloaded more than TGMON_MEDIA_RETENTION_DAYS ago are deleted.

Posts, their edits and their media metadata are the archive and are never pruned; downloaded files
are what fills a disk over months. A file is deleted before its record, in the same job: a crash
between the two leaves a record whose file is gone, forgotten on the next round, never a file that
no record names.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.logging import get_logger
from bot.store import Store, WriteTx

log = get_logger("tgmon.retention")


async def prune_media(store: Store, data_dir: Path, keep: timedelta, *, now: datetime | None = None) -> int:
    """Delete media files downloaded before `now - keep`; how many records were dropped."""
    before = (now or datetime.now(UTC)) - keep
    root = data_dir.resolve()

    def job(tx: WriteTx) -> int:
        paths = tx.forget_media_files(before)
        for relative in paths:
            path = (root / relative).resolve()
            if path.is_relative_to(root):  # a record never names a file outside the data directory
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return len(paths)

    removed = await store.write(job)
    if removed:
        log.info("retention.media_deleted", files=removed, downloaded_before=before.isoformat(timespec="seconds"))
    return removed
