"""The running service as an analyst sees it from the chat, and as the operator's health check and
metrics see it.

It joins what lives in different places (the store, the pipeline's queue, the Telegram source's
connection and FloodWait counts, the rules in force, the recent warnings) behind the one
`ServiceView` the commands know, and the one `Snapshot` the heartbeat writes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.errors import StoreError
from bot.health import Snapshot
from bot.logging import error_counts, recent_problems
from bot.models import post_link
from bot.pipeline import Pipeline
from bot.rules.query import is_fts_syntax, search_expression
from bot.settings import Channels
from bot.sources.telegram import TelegramSource
from bot.store import Mute, Store


class LiveView:
    def __init__(
        self, store: Store, pipeline: Pipeline, configured: Channels, source: TelegramSource | None = None
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.configured = configured
        self.source = source

    async def status(self) -> Mapping[str, Any]:
        totals = await self.store.stats()
        source = self.source
        channels = await self.channels_state()
        return {
            "followed": sum(1 for c in channels if c["available"]),
            "unavailable": sum(1 for c in channels if not c["available"]),
            "last_update_at": _iso(source.last_update_at) if source else None,
            "last_sync_at": _iso(source.last_sync_at) if source else None,
            "queued_events": self.pipeline.queued(),
            "pending_deliveries": totals["pending_deliveries"],
            "dead_letters": totals["dead_letters"],
            "posts": totals["posts"],
            "alerts": totals["alerts"],
            "search_lag": totals["search_lag"],
            "flood_waits": source.flood.waits if source else 0,
            "flood_seconds": source.flood.seconds if source else 0.0,
            "channels": sorted(channels, key=lambda c: c.get("last_post") or "", reverse=True),
            "problems": recent_problems(),
        }

    async def last(self, count: int, category: str | None) -> list[Mapping[str, Any]]:
        return list(await self.store.recent_alerts(count, category))

    async def search(self, query: str, limit: int) -> list[Mapping[str, Any]]:
        expression = query if is_fts_syntax(query) else search_expression(query)
        hits = await self.store.search(expression, None, None, limit)
        return [
            {**hit, "link": post_link(hit["channel_id"], hit["channel_username"], hit["message_id"])} for hit in hits
        ]

    async def mute(self, target: str, until: datetime, by: int) -> None:
        mute = Mute(target, until, by)
        await self.store.write(lambda tx: tx.add_mute(mute))

    async def unmute(self, target: str) -> bool:
        return bool(await self.store.write(lambda tx: tx.remove_mute(target)))

    async def mutes(self) -> list[Mapping[str, Any]]:
        return list(await self.store.mutes(datetime.now(UTC)))

    def rules(self) -> list[Mapping[str, Any]]:
        return [
            {
                "id": rule.id,
                "category": rule.category,
                "severity": rule.severity,
                "scope": sorted(rule.tags | rule.channels | rule.languages),
            }
            for rule in self.pipeline.engine.rules
        ]

    async def channels(self) -> list[Mapping[str, Any]]:
        return list(await self.channels_state())

    async def channels_state(self) -> list[dict[str, Any]]:
        """Configured channels with what the archive knows of them (by id, else by username)."""
        known = await self.store.channel_overview()
        by_id = {row["id"]: row for row in known}
        by_name = {str(row["username"]).lower(): row for row in known if row["username"]}
        rows = []
        for config in self.configured.items:
            row = by_id.get(config.id or 0) or by_name.get((config.username or "").lower()) or {}
            rows.append(
                {
                    "name": row.get("title")
                    or config.title
                    or (f"@{config.username}" if config.username else config.id),
                    "available": row.get("available", True),
                    "unavailable_reason": row.get("unavailable_reason"),
                    "tags": list(config.tags),
                    "posts": row.get("posts", 0),
                    "last_post": row.get("last_post"),
                }
            )
        return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


async def snapshot(pipeline: Pipeline, store: Store, source: TelegramSource | None, connected: bool | None) -> Snapshot:
    """The service now; no outbox depth when the database cannot be read."""
    stats = pipeline.stats
    depth: int | None
    try:
        depth = await store.pending_deliveries(pipeline.dispatcher.destinations)
    except (sqlite3.Error, OSError, StoreError):  # a database that refuses reads too: store_problem says why
        depth = None
    return Snapshot(
        at=datetime.now(UTC),
        pid=os.getpid(),
        telegram_connected=connected,
        store_problem=pipeline.store_problem,
        queued=pipeline.queued(),
        outbox_depth=depth,
        catchup_lag_s=stats.lag_s,
        flood_waits=source.flood.waits if source else 0,
        flood_seconds=source.flood.seconds if source else 0.0,
        posts=dict(stats.posts),
        alerts={
            **{f"{category}/sent": count for category, count in stats.alerts.items()},
            **{f"{category}/held": count for category, count in stats.held.items()},
        },
        errors=error_counts(),
    )
