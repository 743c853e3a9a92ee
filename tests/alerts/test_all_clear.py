"""An all-clear is linked to the alert it ends: its channel's latest open alarm of what it clears."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.pipeline import Pipeline
from bot.rules.engine import Engine
from bot.sources.replay import ReplaySource
from bot.store.sqlite import SQLiteStore
from tests.helpers import T0


def _write(path: Path, posts: list[tuple[int, int, int, str]]) -> None:
    """(channel, message, minutes after T0, text) as JSONL."""
    lines = [
        {"timestamp": (T0 + timedelta(minutes=m)).isoformat(), "channel_id": c, "message_id": mid, "text": t}
        for c, mid, m, t in posts
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")


async def _alerts(store: SQLiteStore, engine: Engine, feed: Path, data_dir: Path) -> dict[int, dict[str, object]]:
    notifier = JsonlNotifier(data_dir / "alerts.jsonl")
    await Pipeline(store, engine, Dispatcher(store, [notifier])).run(ReplaySource([feed]))
    alerts = [json.loads(line) for line in (data_dir / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    return {int(a["message_id"]): a for a in alerts}


async def test_all_clears_end_the_right_alerts(
    store: SQLiteStore, engine: Engine, tmp_path: Path, tmp_data_dir: Path
) -> None:
    feed = tmp_path / "feed.jsonl"
    _write(
        feed,
        [
            (1, 10, 0, "Воздушная тревога. Белгород, пройдите в укрытия!"),
            (2, 20, 1, "Ракетная опасность в Курской области"),
            (1, 11, 5, "Ракетная опасность! Белгородский район"),
            (1, 12, 30, "🟢 Отбой ракетной опасности."),  # ends the missile alarm, not the older air raid
            (1, 13, 40, "Отбой воздушной тревоги."),  # ends the air raid
            (1, 14, 50, "Отбой."),  # nothing left open in channel 1
            (2, 21, 60 * 14, "Отбой ракетной опасности."),  # 14 hours later: too late to be this alarm's end
        ],
    )
    alerts = await _alerts(store, engine, feed, tmp_data_dir)
    assert alerts[12]["clears"]["message_id"] == 11  # type: ignore[index]
    assert alerts[12]["clears"]["category"] == "missile"  # type: ignore[index]
    assert alerts[13]["clears"]["message_id"] == 10  # type: ignore[index]
    assert alerts[14]["clears"] is None
    assert alerts[21]["clears"] is None
    assert all(alerts[m]["all_clear"] for m in (12, 13, 14, 21))
