"""Replay feeds of N posts built from real channel posts, so that the rules fire as they would in service.

The posts come from `../shared/data/*.jsonl` (beside the repository, in CI), taken from its files in
turn so that a short feed mixes news with air-alert monitors; without that folder, from the demo feed
bundled with tgmon. Either way the test runs: it never skips for lack of data. Past the posts there
are, the same posts come again, moved later by the span they cover and with new message ids, so every
post of the feed is a new (channel_id, message_id).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.helpers import REPO, SHARED_DATA

DEMO_FEED = REPO / "bot" / "demo" / "feed.jsonl"
_FIELDS = ("timestamp", "channel_id", "channel_title", "username", "text", "views", "media")


def _read(path: Path) -> list[dict[str, Any]]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else None
        if isinstance(record, dict) and record.get("type", "post") == "post" and record.get("text"):
            posts.append({key: record.get(key) for key in _FIELDS})
    return posts


def base_posts() -> tuple[list[dict[str, Any]], str]:
    """The posts to repeat, and where they came from (for the report)."""
    files = sorted(SHARED_DATA.glob("*.jsonl")) if SHARED_DATA.is_dir() else []
    groups = [posts for posts in map(_read, files) if posts]
    if groups:
        mixed = [post for round_ in itertools.zip_longest(*groups) for post in round_ if post is not None]
        return mixed, f"{len(mixed):,} real posts from ../shared/data ({', '.join(f.name for f in files)})"
    demo = _read(DEMO_FEED)
    return demo, f"the {len(demo)} posts of bot/demo/feed.jsonl (../shared/data is absent)"


def write_feed(path: Path, count: int) -> str:
    """`count` posts as tgmon JSONL at `path`; returns where the posts came from."""
    posts, origin = base_posts()
    times = [datetime.fromisoformat(str(post["timestamp"])) for post in posts]
    span = max(times) - min(times) + timedelta(days=1)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(count):
            round_, position = divmod(index, len(posts))
            record = {
                **posts[position],
                "timestamp": (times[position] + round_ * span).isoformat(),
                "message_id": index + 1,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return origin
