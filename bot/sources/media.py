"""Media files, for the channels that ask for them (`download_media = true`); metadata alone otherwise.

Downloads run behind the posts, in a worker of their own: a 50 MB video never delays the alert its
post raises. A file over `TG_MEDIA_MAX_MB` is skipped (its metadata is stored all the same). Files
land in `<data dir>/media/<channel id>/<message id>.<ext>`, written under a temporary name and
renamed once complete, and their SHA-256 is recorded, so a file on disk is always a whole one and
can be checked against the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from telethon import errors, utils

from bot.logging import get_logger
from bot.sources.channels import Followed
from bot.sources.limits import ChannelGone, Pacer, Requests
from bot.sources.tl import media_of
from bot.store import MediaFile, WriteTx

log = get_logger("tgmon.media")

MEDIA_DIR = "media"
QUEUE_SIZE = 200
_CHUNK = 1 << 20

Write = Callable[[Callable[[WriteTx], None]], Awaitable[None]]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class MediaDownloader:
    def __init__(
        self, client: Any, data_dir: Path, max_bytes: int, write: Write, *, requests: Requests | None = None
    ) -> None:
        self.client = client
        self.data_dir = data_dir
        self.max_bytes = max_bytes
        self.write = write
        self.request = requests or Requests(Pacer(0.0))
        self._queue: asyncio.Queue[tuple[Any, Followed, Path]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queued: set[Path] = set()
        self.downloaded = 0
        self.skipped = 0

    def _relative(self, message: Any, followed: Followed) -> Path:
        return Path(MEDIA_DIR) / str(followed.id) / f"{message.id}{utils.get_extension(message.media) or ''}"

    def offer(self, message: Any, followed: Followed) -> None:
        """Queue a message's file if its channel wants files and it fits under the cap."""
        if followed.config is None or not followed.config.download_media or getattr(message, "media", None) is None:
            return
        media = media_of(message.media)
        if not media or media[0].kind.value in ("web_page", "poll", "geo", "contact", "other"):
            return
        size = media[0].size
        if size is not None and size > self.max_bytes:
            self.skipped += 1
            log.info("media.too_large", channel=followed.label, message_id=message.id, size=size, cap=self.max_bytes)
            return
        relative = self._relative(message, followed)
        if relative in self._queued or (self.data_dir / relative).exists():
            return  # seen live, then read again from history or by a refresh: one download is enough
        try:
            self._queue.put_nowait((message, followed, relative))
            self._queued.add(relative)
        except asyncio.QueueFull:
            self.skipped += 1
            log.warning("media.queue_full", channel=followed.label, message_id=message.id, queued=QUEUE_SIZE)

    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        while True:
            message, followed, relative = await self._queue.get()
            try:
                await self._download(message, followed, relative)
            except (errors.RPCError, ChannelGone, OSError, ConnectionError, TimeoutError) as exc:
                self.skipped += 1
                log.warning("media.failed", channel=followed.label, message_id=message.id, error=str(exc))
            finally:
                self._queued.discard(relative)
                self._queue.task_done()

    async def _download(self, message: Any, followed: Followed, relative: Path) -> None:
        target = self.data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        part = target.with_name(target.name + ".part")
        await self.request(
            "download", followed.label, functools.partial(self.client.download_media, message, file=str(part))
        )
        if not part.exists():
            return
        size = part.stat().st_size
        if size > self.max_bytes:  # the metadata did not say: too late to avoid the download, not to keep it
            part.unlink()
            self.skipped += 1
            log.info("media.too_large", channel=followed.label, message_id=message.id, size=size, cap=self.max_bytes)
            return
        digest = await asyncio.to_thread(sha256_of, part)
        os.replace(part, target)
        with contextlib.suppress(OSError):
            os.chmod(target, 0o600)
        record = MediaFile(followed.id, int(message.id), 0, relative.as_posix(), digest, size)
        await self.write(lambda tx: tx.add_media_file(record))
        self.downloaded += 1
        log.info("media.saved", channel=followed.label, message_id=message.id, path=record.path, size=size)
