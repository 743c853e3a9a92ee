"""The rules process gives the verdicts the rules give in process, context included; fails as they fail;
and does not outlive its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.errors import ConfigError
from bot.pipeline import Pipeline
from bot.places.finder import PlaceFinder
from bot.places.gazetteer import load_gazetteer
from bot.rules.analyzer import Analyzer
from bot.rules.engine import Document, Engine
from bot.rules.remote import RulesProcess
from bot.settings import ChannelConfig, Channels
from bot.sources.replay import ReplaySource
from bot.store.sqlite import SQLiteStore
from tests.conftest import Logs
from tests.helpers import REPO, RULES_TOML, T0, read_jsonl, write_jsonl

MONITOR = 2193251936
CHANNELS = Channels.of([ChannelConfig(id=MONITOR, tags=("monitors",), region=("Київська область",))])
POSTS = [
    (1902000001, "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия."),
    (1902000001, "Прием граждан перенесен на среду"),
    (MONITOR, "Шахеди на Київщину"),
    (MONITOR, "Обухів!!!!"),  # an update only in the context of the post before it
    (MONITOR, "2 на Київ"),
    (MONITOR, "Бачу донатите 🤝"),
    (1902000002, "Отбой ракетной опасности"),
]


def documents() -> list[tuple[Document, bool]]:
    tags = {MONITOR: frozenset({"monitors"})}
    return [
        (Document(text, cid, None, tags.get(cid, frozenset()), T0 + timedelta(minutes=n)), True)
        for n, (cid, text) in enumerate(POSTS)
    ]


async def test_the_same_verdicts_as_in_process(engine: Engine) -> None:
    local = Analyzer(engine, PlaceFinder(load_gazetteer()), CHANNELS.homes_of)
    expected = [local.verdict(doc, new=new) for doc, new in documents()]
    process = RulesProcess(RULES_TOML, CHANNELS)
    try:
        assert await process.start() == len(engine.rules)
        first = await process.verdicts(documents()[:3])  # the context carries over from batch to batch
        rest = await process.verdicts(documents()[3:])
    finally:
        process.close()
    assert first + rest == expected
    assert [v.category for v in expected] == ["missile", None, "uav", "uav", "uav", None, "all_clear"]
    assert expected[3].places[0].place.name == "Обухів"


async def test_a_bad_rules_file_fails_start_as_it_would_in_process(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "x"\ncategory = "uav"\nany = ["дрон"]\nregex = ["("]\n', encoding="utf-8")
    process = RulesProcess(bad, CHANNELS)
    try:
        with pytest.raises(ConfigError) as caught:
            await process.start()
    finally:
        process.close()
    assert "regex" in "\n".join(caught.value.lines)


async def test_a_pipeline_on_a_rules_process_stores_and_alerts_alike(store: SQLiteStore, tmp_path: Path) -> None:
    records = [
        {"channel_id": cid, "message_id": 10 + n, "timestamp": (T0 + timedelta(minutes=n)).isoformat(), "text": text}
        for n, (cid, text) in enumerate(POSTS)
    ]
    feed = write_jsonl(tmp_path / "feed.jsonl", records)
    process = RulesProcess(RULES_TOML, CHANNELS)
    try:
        await process.start()
        dispatcher = Dispatcher(store, [JsonlNotifier(tmp_path / "alerts.jsonl")])
        stats = await Pipeline(store, process, dispatcher, CHANNELS).run(ReplaySource([feed]), drain_timeout=60)
    finally:
        process.close()
    assert stats.outcomes == {"new": len(POSTS)}
    alerts = read_jsonl(tmp_path / "alerts.jsonl")
    assert [(a["message_id"], a["category"]) for a in alerts] == [
        (10, "missile"),
        (12, "uav"),
        (13, "uav"),
        (14, "uav"),
        (16, "all_clear"),
    ]
    assert alerts[2]["rules"] == ["channel-context"]


def test_the_rules_process_ends_with_its_parent(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from bot.rules.remote import RulesProcess\n"
        "from bot.settings import Channels\n"
        "async def main():\n"
        "    process = RulesProcess(Path(sys.argv[1]), Channels.of(()))\n"
        "    await process.start()\n"
        "    print(*process._pool._processes, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(RULES_TOML)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=60)
        deadline = time.monotonic() + 30  # a hang guard, not a speed check
        while time.monotonic() < deadline and alive(worker):
            time.sleep(0.1)
        assert not alive(worker)
    finally:
        if parent.poll() is None:
            parent.kill()


def alive(pid: int) -> bool:
    """Running, not a zombie (a zombie's parent is gone too, so nothing waits for it but init)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_without_a_rules_process_the_rules_run_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logs: Logs
) -> None:
    """A host with no semaphores (or no spawn) still replays: in one process, with a warning."""
    from bot.cli.common import rules_matcher
    from bot.settings import load_settings

    async def refuse(self: RulesProcess) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(RulesProcess, "start", refuse)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    settings = load_settings(config_dir=REPO / "config", data_dir=tmp_path)
    async with rules_matcher(settings, RULES_TOML, CHANNELS) as matcher:
        assert isinstance(matcher, Engine)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["rules.process_unavailable"]
