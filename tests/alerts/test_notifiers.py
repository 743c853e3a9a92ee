"""Notifiers: the JSONL file (never a line twice, even across a crash) and the console."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console

from bot.alerts.notifiers import ConsoleNotifier, JsonlNotifier


def alert(ident: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "category": "missile",
        "severity": "high",
        "all_clear": False,
        "rules": ["missile-danger"],
        "channel_id": 1902000001,
        "channel_title": "Вячеслав Гладков",
        "channel_username": "gladkov_demo",
        "message_id": 4101,
        "link": "https://t.me/gladkov_demo/4101",
        "date": "2024-03-12T03:04:00+00:00",
        "edited": False,
        "text": "Ракетная опасность в Белгороде",
        "matches": [{"start": 0, "end": 18}],
        "media": [],
        **fields,
    }


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_jsonl_writes_one_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    notifier = JsonlNotifier(path)
    assert await notifier.send(alert("a1")) is None
    await notifier.send(alert("a2", text="строка\nвторая"))
    await notifier.send(alert("a1"))
    await notifier.close()
    written = lines(path)
    assert [a["id"] for a in written] == ["a1", "a2"]
    assert written[0] == alert("a1")
    assert written[1]["text"] == "строка\nвторая"
    assert "Ракетная" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes


async def test_jsonl_fresh_instance_skips_ids_already_in_the_file(tmp_path: Path) -> None:
    """The crash case: a line was written, the process died before the delivery was recorded as sent."""
    path = tmp_path / "alerts.jsonl"
    first = JsonlNotifier(path)
    await first.send(alert("a1"))
    await first.send(alert("a2"))
    await first.close()  # (or a crash: the line was flushed when written)

    again = JsonlNotifier(path)
    await again.send(alert("a2"))  # retried after the restart
    await again.send(alert("a3"))
    await again.close()
    assert [a["id"] for a in lines(path)] == ["a1", "a2", "a3"]


async def test_jsonl_line_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    notifier = JsonlNotifier(path)
    await notifier.send(alert("a1"))
    assert [a["id"] for a in lines(path)] == ["a1"]  # readable while the notifier is still open
    await notifier.close()


async def test_jsonl_ignores_a_torn_line_when_reading_ids(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"id": "a0", "categ\n' + json.dumps(alert("a1")) + "\n", encoding="utf-8")
    notifier = JsonlNotifier(path)
    await notifier.send(alert("a1"))
    await notifier.send(alert("a2"))
    await notifier.close()
    assert [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()[1:]] == ["a1", "a2"]


async def test_jsonl_starts_a_new_line_after_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text(json.dumps(alert("a1")) + "\n" + '{"id": "a2", "categ', encoding="utf-8")
    notifier = JsonlNotifier(path)
    await notifier.send(alert("a3"))
    await notifier.close()
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["id"] == "a3"


async def test_jsonl_reopens_after_close(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    notifier = JsonlNotifier(path)
    await notifier.send(alert("a1"))
    await notifier.close()
    await notifier.send(alert("a2"))
    await notifier.send(alert("a1"))
    await notifier.close()
    assert [a["id"] for a in lines(path)] == ["a1", "a2"]


async def test_console_notifier_renders() -> None:
    buffer = io.StringIO()
    notifier = ConsoleNotifier(Console(file=buffer, width=200, highlight=False), ZoneInfo("Europe/Moscow"))
    assert await notifier.send(alert("a1", media=[{"kind": "video", "duration": 35}])) is None
    await notifier.close()
    output = buffer.getvalue()
    assert "🚀 MISSILE · high · 2024-03-12 06:04 MSK · Вячеслав Гладков @gladkov_demo" in output
    assert "Ракетная опасность в Белгороде" in output
    assert "https://t.me/gladkov_demo/4101" in output
    assert "video 0:35" in output
    assert "rules: missile-danger" in output
    assert "\x1b[" not in output  # not a terminal: no colour codes
