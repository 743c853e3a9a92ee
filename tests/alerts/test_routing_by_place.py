"""Routing by place, end to end: `tgmon replay` → rules and places → outbox → two webhooks routed by place.

An analyst covering Kursk gets Kursk's alerts, alerts naming no place and alerts about a whole
country; the Kyiv desk gets Kyiv's, its districts included, and not those of the oblast around it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bot.alerts.webhook import webhook_name
from tests.alerts.test_webhook import HookServer
from tests.helpers import REPO, T0, read_jsonl, write_jsonl
from tests.test_webhook_replay import tgmon

KURSK_GOV = {"channel_id": 1902000002, "channel_title": "Роман Старовойт", "username": "starovoit_demo"}
KYIV_NEWS = {"channel_id": 1902000010, "channel_title": "Київ онлайн", "username": "kyiv_online_demo"}
MILITIA = {"channel_id": 1902000003, "channel_title": "Легион «Свобода России»", "username": "legion_demo"}

FEED: list[tuple[dict[str, Any], str, set[str]]] = [
    # (channel, text, the desks that must get it)
    (KURSK_GOV, "Ракетная опасность в Курске. Пройдите в укрытия.", {"kursk"}),
    (KYIV_NEWS, "Повітряна тривога в Києві! Прямуйте до укриття.", {"kyiv"}),
    (KYIV_NEWS, "Лунають вибухи на Троєщині, залишайтеся в укриттях.", {"kyiv"}),
    (MILITIA, "Жителям Белгородской и Курской областей: немедленно покиньте города!", {"kursk"}),
    (KURSK_GOV, "Угроза атаки БПЛА. Всем оставаться в укрытиях.", {"kursk", "kyiv"}),
    (MILITIA, "Ракетная опасность по всей России.", {"kursk", "kyiv"}),
    (KYIV_NEWS, "Повітряна тривога в Обухові! Прямуйте до укриття.", set()),
]


def test_each_desk_gets_the_alerts_of_its_places(tmp_path: Path) -> None:
    records = [
        {**channel, "message_id": 100 + number, "timestamp": (T0.replace(minute=number)).isoformat(), "text": text}
        for number, (channel, text, _) in enumerate(FEED)
    ]
    feed = write_jsonl(tmp_path / "feed.jsonl", records)
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(REPO / "config" / "rules.toml", config / "rules.toml")
    (config / "channels.toml").write_text("", encoding="utf-8")
    with HookServer() as kursk, HookServer() as kyiv:
        (config / "alerts.toml").write_text(
            'cooldown = "0"\ndedup_window = "0"\n\n'
            f'[[route]]\ndestination = "{webhook_name(kursk.url)}"\nplaces = ["Курская область"]\n\n'
            f'[[route]]\ndestination = "{webhook_name(kyiv.url)}"\nplaces = ["Київ"]\n',
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "TGMON_NOTIFIERS": "jsonl",
            "TGMON_LOG_LEVEL": "warning",
            "TGMON_CONFIG_DIR": str(config),
            "ALERT_WEBHOOK_URL": f"{kursk.url},{kyiv.url}",
        }
        data_dir = tmp_path / "data"
        tgmon("replay", str(feed), "--data-dir", str(data_dir), "--no-progress", env=env, timeout=300)
        stats = json.loads(tgmon("stats", "--json", "--data-dir", str(data_dir), env=env, timeout=120).stdout)

    alerts = {a["message_id"]: a for a in read_jsonl(data_dir / "alerts.jsonl")}
    assert sorted(alerts) == [100 + n for n in range(len(FEED))]  # every post alerts; jsonl takes them all
    for desk, server in (("kursk", kursk), ("kyiv", kyiv)):
        got = [body["message_id"] for body in server.accepted]
        wanted = [100 + n for n, (_, _, desks) in enumerate(FEED) if desk in desks]
        assert got == wanted, desk
    assert stats["pending_deliveries"] == 0
    troieshchyna = alerts[102]["places"]
    assert [(p["name"], p["kind"], p["oblast"]) for p in troieshchyna] == [("Троєщина", "district", "Київ")]
    assert {p["name"] for p in alerts[103]["places"]} == {"Белгородская область", "Курская область"}
    assert alerts[104]["places"] == []
