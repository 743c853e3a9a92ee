"""`tgmon demo`: the bundled feed raises exactly the alerts its labels (tests/data/demo_labels.json) expect."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DEMO_LABELS, read_jsonl
from tests.test_cli import tgmon_process


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("demo-data")
    done = tgmon_process("demo", "--rate", "0", "--data-dir", str(data), env={"TGMON_NOTIFIERS": "console,jsonl"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return data / "demo", done.stdout


def last_alert_per_post(alerts: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    last: dict[tuple[int, int], dict[str, Any]] = {}
    for alert in alerts:
        last[(alert["channel_id"], alert["message_id"])] = alert
    return last


def test_demo_alerts_match_labels(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    labels = json.loads(DEMO_LABELS.read_text(encoding="utf-8"))["posts"]
    alerts = read_jsonl(folder / "alerts.jsonl")
    last = last_alert_per_post(alerts)
    misses = []
    for label in labels:
        key = (label["channel_id"], label["message_id"])
        got = last.get(key)
        if label["expect"] in ("alert", "all_clear"):
            if got is None or got["category"] != label["category"]:
                found = got["category"] if got else "no alert"
                misses.append(f"{key}: expected {label['category']}, got {found} ({label['why']})")
        elif label["expect"] == "none" and got is not None:
            misses.append(f"{key}: expected no alert, got {got['category']} ({label['why']})")
        elif label["expect"] == "merged":
            twin = last.get(tuple(label["merged_into"]))
            if got is not None or twin is None:
                misses.append(f"{key}: expected folded into {label['merged_into']}, got {got} ({label['why']})")
    assert not misses, f"{len(misses)} of {len(labels)} labels missed:\n" + "\n".join(misses)


def test_demo_labels_cover_the_expectations() -> None:
    labels = json.loads(DEMO_LABELS.read_text(encoding="utf-8"))["posts"]
    kinds = {label["expect"] for label in labels}
    assert kinds == {"alert", "all_clear", "none", "merged"}
    assert len({(label["channel_id"], label["message_id"]) for label in labels}) == len(labels)


def test_demo_archive(demo: tuple[Path, str]) -> None:
    folder, stdout = demo
    alerts = read_jsonl(folder / "alerts.jsonl")
    assert len({a["id"] for a in alerts}) == len(alerts)
    assert (folder / "tgmon.db").exists()
    assert (folder / "search.db").exists()
    # The console notifier printed the same alerts.
    assert stdout.count("rules: ") == len(alerts)
    feed = Path(__file__).resolve().parents[1] / "bot" / "demo" / "feed.jsonl"
    posts = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    ids = {(p["channel_id"], p["message_id"]) for p in posts if p.get("type", "post") == "post"}
    assert {(a["channel_id"], a["message_id"]) for a in alerts} <= ids


def test_demo_again_starts_afresh(demo: tuple[Path, str]) -> None:
    """Last in this file: it replaces the demo folder the tests above read."""
    folder, _ = demo
    before = read_jsonl(folder / "alerts.jsonl")
    done = tgmon_process("demo", "--rate", "0", "--data-dir", str(folder.parent))
    assert done.returncode == 0, done.stderr
    after = read_jsonl(folder / "alerts.jsonl")
    assert len(after) == len(before)  # the old archive was removed, not added to
    assert {a["id"] for a in after} == {a["id"] for a in before}


def test_demo_folds_the_forwarded_call_into_the_first_alert(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    with sqlite3.connect(folder / "tgmon.db") as db:
        [(suppressed, merged_into)] = db.execute(
            "SELECT suppressed, merged_into FROM alerts WHERE channel_id = 1902000005 AND message_id = 311"
        ).fetchall()
        [(first_id, payload)] = db.execute(
            "SELECT id, payload FROM alerts WHERE channel_id = 1902000003 AND message_id = 807"
        ).fetchall()
    assert (suppressed, merged_into) == ("duplicate", first_id)
    sources = [(s["channel_id"], s["message_id"]) for s in json.loads(payload)["sources"]]
    assert sources == [(1902000003, 807), (1902000005, 311)]
