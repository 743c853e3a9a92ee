"""The Apprise notifier (optional extra): a destination per URL, short text, failures retried, a clear error without it.

Apprise's `json://` service posts to a local server here, so nothing leaves the machine.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.apprise import AppriseError, AppriseNotifier, alert_body, alert_title, apprise_name, apprise_notifiers
from bot.alerts.notifiers import PermanentError
from bot.alerts.outbox import Dispatcher, build_alert
from bot.cli.common import notifiers_for
from bot.errors import ConfigError
from bot.logging import configure
from bot.models import Channel, Post
from bot.rules.engine import Match, verdict
from bot.settings import load_settings
from bot.store.sqlite import SQLiteStore
from tests.alerts.test_webhook import HookServer, Reply, raise_many, run_dispatcher
from tests.helpers import T0

pytest.importorskip("apprise")

GLADKOV = Channel(1902000001, "Вячеслав Гладков", "gladkov_demo")
TEXT = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия. " + "Подробности следуют. " * 40


def alert(message_id: int = 4101, category: str = "missile", all_clear: bool = False) -> dict[str, Any]:
    start = TEXT.index("Ракетная")
    found = verdict([Match("missile-danger", category, "high", start, start + 18, "ракетная опасность")])
    payload = build_alert(Post(GLADKOV, message_id, T0, TEXT), found).payload
    payload["all_clear"] = all_clear
    return payload


@pytest.fixture
def server() -> Iterator[HookServer]:
    with HookServer() as running:
        yield running


def json_url(server: HookServer) -> str:
    return server.url.replace("http://", "json://")


def test_name_is_scheme_and_hash() -> None:
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890"
    name = apprise_name(url)
    assert name == apprise_name(url) == AppriseNotifier(url).name
    assert name.startswith("apprise:tgram:")
    assert len(name.split(":")[2]) == 8
    assert "AAHdq" not in name
    assert "123456789" not in name
    assert apprise_name("mailto://user:pass@example.org") != apprise_name("mailto://user:other@example.org")


def test_text_has_category_channel_excerpt_and_link() -> None:
    payload = alert()
    title, body = alert_title(payload), alert_body(payload)
    assert "MISSILE" in title
    assert "high" in title
    assert "Вячеслав Гладков" in title
    assert "@gladkov_demo" in body
    assert "Ракетная опасность в Белгороде" in body
    assert "https://t.me/gladkov_demo/4101" in body
    assert len(body) < 600  # an excerpt, not the whole post
    assert "…" in body


async def test_sends_through_apprise(server: HookServer) -> None:
    notifier = AppriseNotifier(json_url(server))
    assert await notifier.send(alert()) is None
    await notifier.close()
    (got,) = server.accepted
    assert "MISSILE" in got["title"]
    assert "https://t.me/gladkov_demo/4101" in got["message"]
    assert got["type"] == "warning"


async def test_all_clear_is_a_success_message(server: HookServer) -> None:
    await AppriseNotifier(json_url(server)).send(alert(category="all_clear", all_clear=True))
    assert server.accepted[0]["type"] == "success"


async def test_not_delivered_is_transient() -> None:
    def refuse(body: dict[str, Any]) -> Reply:
        return 500, {}, b"down"

    with HookServer(refuse) as failing:
        notifier = AppriseNotifier(json_url(failing))
        with pytest.raises(AppriseError, match="not delivered") as caught:
            await notifier.send(alert())
    assert not isinstance(caught.value, PermanentError)
    assert failing.requests >= 1


async def test_through_the_dispatcher(store: SQLiteStore, server: HookServer) -> None:
    notifier = AppriseNotifier(json_url(server))
    ids = await raise_many(store, 3, [notifier.name])
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert len(server.accepted) == len(ids) == 3
    assert (await store.stats())["deliveries"][notifier.name] == {"sent": 3}


def test_unknown_url_is_a_config_error_that_hides_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        AppriseNotifier("nosuchservice://secret-token-value@host")
    (line,) = caught.value.lines
    assert line.startswith("ALERT_APPRISE_URLS: the nosuchservice:// URL (apprise:nosuchservice:")
    assert "secret-token-value" not in line


def test_settings_make_one_notifier_per_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: HookServer
) -> None:
    first, second = json_url(server), json_url(server).replace("/hook", "/other")
    monkeypatch.setenv("TGMON_NOTIFIERS", "")
    monkeypatch.setenv("ALERT_APPRISE_URLS", f"{first}, {second}")
    settings = load_settings()
    assert settings.env.apprise_urls == (first, second)
    made = notifiers_for(settings, tmp_path)
    assert [n.name for n in made] == [apprise_name(first), apprise_name(second)]
    assert first in settings.env.secrets()


def test_settings_refuse_a_url_without_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_APPRISE_URLS", "json://localhost/a,user@example.org")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (line,) = caught.value.lines
    assert line == (
        "environment (.env): ALERT_APPRISE_URLS: expected Apprise URLs (scheme://…), comma-separated;"
        " entry 2 of 2 has no ://"
    )


def test_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ALERT_APPRISE_URLS` set but Apprise not installed: one line telling how to install it."""
    monkeypatch.setitem(sys.modules, "apprise", None)  # `import apprise` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'tgmon\[apprise\]'"):
        apprise_notifiers(["json://localhost/hook"])
    assert apprise_notifiers([]) == []
    monkeypatch.setenv("ALERT_APPRISE_URLS", "json://localhost/hook")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (line,) = caught.value.lines
    assert line.startswith("environment (.env): ALERT_APPRISE_URLS: ")
    assert "pip install 'tgmon[apprise]'" in line
    assert "localhost" not in line
    monkeypatch.delenv("ALERT_APPRISE_URLS")
    load_settings()  # unset: no need for the package


async def test_url_never_reaches_the_logs(server: HookServer, store: SQLiteStore) -> None:
    stream = io.StringIO()
    configure("debug", "json", stream)
    url = json_url(server).replace("/hook", "/Zq7Xk2Lp9Wm4Rt8Vb3Nc")
    notifier = AppriseNotifier(url)
    await raise_many(store, 1, [notifier.name])
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert "Zq7Xk2Lp9Wm4Rt8Vb3Nc" not in stream.getvalue()
