"""The webhook notifier: what it sends, what each answer means, its name, its secrets, delivery through the outbox."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import bot.alerts.outbox as outbox
from bot import __version__
from bot.alerts.notifiers import PermanentError, RetryAfter
from bot.alerts.outbox import Dispatcher, build_alert, raise_alerts
from bot.alerts.webhook import (
    RETRY_AFTER_CAP_S,
    RETRY_AFTER_DEFAULT_S,
    WebhookError,
    WebhookNotifier,
    looks_secret,
    retry_after_seconds,
    url_secrets,
    webhook_name,
)
from bot.cli.common import notifiers_for
from bot.errors import ConfigError
from bot.logging import configure, get_logger
from bot.models import Channel, Post
from bot.rules.engine import Match, Verdict, verdict
from bot.settings import load_settings
from bot.store import AlertRecord
from bot.store.sqlite import SQLiteStore
from tests.helpers import T0

GLADKOV = Channel(1902000001, "Вячеслав Гладков", "gladkov_demo")
TEXT = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия."
URL = "https://siem.example.org/tgmon/hook"
SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/XXXXXXXXXXXXXXXXXXXXXXXX"
SECRET_URL = "https://bot:hunter2-pass@hooks.example.org/api/v1/6f1c2a9e4b7d4c0fa1e2/ingest?token=s3cr3t-t0ken-value"


def missile(text: str = TEXT) -> Verdict:
    start = text.index("Ракетная")
    return verdict([Match("missile-danger", "missile", "high", start, start + 18, "ракетная опасность")])


def alert(message_id: int = 4101) -> dict[str, Any]:
    return build_alert(Post(GLADKOV, message_id, T0, TEXT), missile()).payload


Handler = Callable[[httpx.Request], httpx.Response]


def mock(handler: Handler, url: str = URL, **kwargs: Any) -> WebhookNotifier:
    return WebhookNotifier(url, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs)


def answer(status: int, **headers: str) -> Handler:
    return lambda request: httpx.Response(status, headers=headers, text="" if status < 300 else "no good")


# --- a real HTTP server on 127.0.0.1 ------------------------------------------------------------------


Reply = tuple[int, Mapping[str, str], bytes]


class HookServer:
    """A threaded HTTP server on 127.0.0.1 that answers each POST as `decide(body)` says.

    `accepted` holds the bodies answered with a 2xx, in the order they were answered; `requests`
    counts every POST.
    """

    def __init__(self, decide: Callable[[dict[str, Any]], Reply] | None = None, delay: float = 0.0) -> None:
        self.decide = decide or (lambda body: (200, {}, b"ok"))
        self.delay = delay
        self.accepted: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                if server.delay:
                    time.sleep(server.delay)
                with server.lock:
                    server.requests += 1
                    status, headers, reply = server.decide(body)
                    if 200 <= status < 300:
                        server.accepted.append(body)
                        server.headers.append(dict(self.headers.items()))
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hook-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    with HookServer() as server:
        yield server


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- what is sent -----------------------------------------------------------------------------------


async def test_body_is_the_alert_object_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    notifier = mock(handler)
    payload = alert()
    assert await notifier.send(payload) is None
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert orjson.loads(request.content) == payload
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == payload["id"]
    assert request.headers["user-agent"] == f"tgmon/{__version__}"


async def test_real_server_gets_the_alert(hook_server: HookServer) -> None:
    notifier = WebhookNotifier(hook_server.url)
    try:
        payload = alert()
        await notifier.send(payload)
        await notifier.send(alert(4102))
    finally:
        await notifier.close()
    assert hook_server.accepted[0] == payload
    assert [h["Idempotency-Key"] for h in hook_server.headers] == [payload["id"], alert(4102)["id"]]
    assert hook_server.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_delivered(status: int) -> None:
    assert await mock(answer(status)).send(alert()) is None


async def test_2xx_returns_the_remote_request_id() -> None:
    assert await mock(answer(200, **{"X-Request-Id": "req-42"})).send(alert()) == "req-42"


# --- what each answer means -------------------------------------------------------------------------


async def test_429_with_retry_after_seconds() -> None:
    with pytest.raises(RetryAfter) as caught:
        await mock(answer(429, **{"Retry-After": "7"})).send(alert())
    assert caught.value.seconds == 7
    assert not isinstance(caught.value, PermanentError)


async def test_429_with_retry_after_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    with pytest.raises(RetryAfter) as caught:
        await mock(answer(429, **{"Retry-After": format_datetime(when, usegmt=True)})).send(alert())
    assert 110 <= caught.value.seconds <= 120


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, RETRY_AFTER_DEFAULT_S),
        ("", RETRY_AFTER_DEFAULT_S),
        ("soon", RETRY_AFTER_DEFAULT_S),
        ("-5", RETRY_AFTER_DEFAULT_S),
        ("nan", RETRY_AFTER_DEFAULT_S),
        ("0", 0.0),
        ("2.5", 2.5),
        ("86400", RETRY_AFTER_CAP_S),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
    ],
)
def test_retry_after_parsing(header: str | None, expected: float) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_date_is_capped() -> None:
    now = datetime(2024, 3, 12, tzinfo=UTC)
    assert retry_after_seconds("Wed, 13 Mar 2024 00:00:00 GMT", now) == RETRY_AFTER_CAP_S
    assert retry_after_seconds("Tue, 12 Mar 2024 00:01:00 GMT", now) == 60


async def test_429_without_retry_after_waits_the_default() -> None:
    with pytest.raises(RetryAfter) as caught:
        await mock(answer(429)).send(alert())
    assert caught.value.seconds == RETRY_AFTER_DEFAULT_S


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_5xx_is_transient(status: int) -> None:
    with pytest.raises(WebhookError, match=f"HTTP {status}") as caught:
        await mock(answer(status)).send(alert())
    assert not isinstance(caught.value, PermanentError | RetryAfter)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
async def test_other_4xx_is_permanent(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text='{"error": "channel_not_found",\n  "detail": "' + "x" * 500 + '"}')

    with pytest.raises(PermanentError) as caught:
        await mock(handler).send(alert())
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert '{"error": "channel_not_found", "detail"' in message  # whitespace folded
    assert len(message) < 300  # an excerpt, not the whole body


async def test_redirect_is_permanent_and_says_what_to_do() -> None:
    with pytest.raises(PermanentError, match="HTTP 301 redirect: set ALERT_WEBHOOK_URL"):
        await mock(answer(301, Location="https://elsewhere.example.org/")).send(alert())


async def test_transport_errors_are_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(WebhookError, match=r"ConnectError: .*Connection refused"):
        await mock(refuse).send(alert())

    def read_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(WebhookError, match="ReadTimeout"):
        await mock(read_timeout).send(alert())


async def test_connection_refused_on_a_real_port() -> None:
    notifier = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook")
    try:
        with pytest.raises(WebhookError, match="ConnectError"):
            await notifier.send(alert())
    finally:
        await notifier.close()


async def test_slow_server_times_out() -> None:
    with HookServer(delay=2.0) as server:
        notifier = WebhookNotifier(server.url, timeout=0.2)
        started = time.monotonic()
        try:
            with pytest.raises(WebhookError, match=r"Timeout|no answer within 0\.2 s"):
                await notifier.send(alert())
        finally:
            await notifier.close()
        assert time.monotonic() - started < 1.5


async def test_mock_timeout_is_the_notifier_deadline() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    notifier = WebhookNotifier(URL, timeout=0.05, client=httpx.AsyncClient(transport=httpx.MockTransport(hang)))
    with pytest.raises(WebhookError, match=r"no answer within 0\.05 s"):
        await notifier.send(alert())


# --- the client -------------------------------------------------------------------------------------


async def test_one_client_reused_and_closed(hook_server: HookServer) -> None:
    notifier = WebhookNotifier(hook_server.url)
    await notifier.send(alert(1))
    client = notifier._client
    await notifier.send(alert(2))
    assert notifier._client is client
    assert client is not None
    await notifier.close()
    assert client.is_closed
    await notifier.close()  # twice is fine


async def test_a_client_passed_in_is_left_open() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer(200)))
    notifier = WebhookNotifier(URL, client=client)
    await notifier.send(alert())
    await notifier.close()
    assert not client.is_closed
    await client.aclose()


@pytest.mark.parametrize("url", ["ftp://example.org/x", "example.org/hook", "https:///nohost", "http://host:99999/"])
def test_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="webhook URL"):
        WebhookNotifier(url)


# --- its name and its secrets ----------------------------------------------------------------------


def test_name_is_host_and_path() -> None:
    assert webhook_name(URL) == "webhook:siem.example.org/tgmon/hook"
    assert webhook_name("http://127.0.0.1:8080/hook") == "webhook:127.0.0.1:8080/hook"
    assert webhook_name("https://Example.ORG") == "webhook:example.org"
    assert webhook_name("http://[::1]:9000/h") == "webhook:[::1]:9000/h"


def test_name_is_stable_and_secret_free() -> None:
    name = webhook_name(SECRET_URL)
    assert name == webhook_name(SECRET_URL) == WebhookNotifier(SECRET_URL).name
    for secret in ("hunter2", "bot:", "s3cr3t", "token", "6f1c2a9e4b7d4c0fa1e2", "?"):
        assert secret not in name
    assert name.startswith("webhook:hooks.example.org/api/v1/***/ingest~")
    slack = webhook_name(SLACK)
    assert slack.startswith("webhook:hooks.slack.com/services/***/***/***~")
    assert "T0AAAAAAA" not in slack
    assert "XXXXXXXX" not in slack


def test_names_keep_urls_apart() -> None:
    urls = [
        URL,
        URL + "?tenant=a",
        URL + "?tenant=b",
        "https://user:one@siem.example.org/tgmon/hook",
        "https://user:two@siem.example.org/tgmon/hook",
        SLACK,
        SLACK.replace("XXXX", "YYYY"),
        "https://siem.example.org:8443/tgmon/hook",
    ]
    assert len({webhook_name(u) for u in urls}) == len(urls)


@pytest.mark.parametrize("segment", ["hook", "api", "v1", "v2", "alerts", "tgmon-events", "12345", "services"])
def test_plain_path_segments_are_shown(segment: str) -> None:
    assert not looks_secret(segment)


@pytest.mark.parametrize(
    "segment",
    [
        "T0AAAAAAA",
        "B0BBBBBBB",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
        "123456789012345678",
        "3f9a1c2e-4b7d-4c0f",
        "a%2Fb",
        "ab12cd34",
    ],
)
def test_token_like_path_segments_are_masked(segment: str) -> None:
    assert looks_secret(segment)


def test_url_secrets_cover_userinfo_query_and_tokens() -> None:
    secrets = url_secrets(SECRET_URL, webhook_name(SECRET_URL))
    for part in (SECRET_URL, "hunter2-pass", "token=s3cr3t-t0ken-value", "s3cr3t-t0ken-value", "6f1c2a9e4b7d4c0fa1e2"):
        assert part in secrets
    # nothing the logged name shows is masked, or the name itself would vanish from the logs
    plain = "http://127.0.0.1:8080/hook"
    assert url_secrets(plain, webhook_name(plain)) == [plain]


async def test_secrets_never_reach_the_logs_or_the_database(store: SQLiteStore, no_backoff: None) -> None:
    """The dispatcher logs a failing webhook by name; the URL's token, password and query stay out of logs and rows."""
    stream = io.StringIO()
    configure("debug", "json", stream)
    notifier = mock(lambda request: httpx.Response(404, text=f"unknown hook {request.url}"), url=SECRET_URL)
    ids = await raise_many(store, 1, [notifier.name])
    get_logger("test").info("configured", url=SECRET_URL, error=f"POST {SECRET_URL} failed")
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    logs = stream.getvalue()
    assert "alert.dead_letter" in logs
    assert notifier.name in logs
    assert ids[0] in logs
    for secret in ("hunter2", "s3cr3t", "6f1c2a9e4b7d4c0fa1e2"):
        assert secret not in logs
    stats = await store.stats()
    assert stats["dead_letters"] == 1
    async with store._reader.execute("SELECT last_error FROM deliveries") as cursor:
        (error,) = [row[0] for row in await cursor.fetchall()]
    assert "HTTP 404" in error
    assert "unknown hook" in error
    for secret in ("hunter2", "s3cr3t", "6f1c2a9e4b7d4c0fa1e2"):
        assert secret not in error


# --- settings and notifiers_for ---------------------------------------------------------------------


def test_settings_make_one_webhook_per_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TGMON_NOTIFIERS", "jsonl")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f" {URL} , {SLACK},")
    monkeypatch.setenv("ALERT_WEBHOOK_TIMEOUT", "2.5")
    settings = load_settings()
    assert settings.env.webhook_urls == (URL, SLACK)
    made = notifiers_for(settings, tmp_path)
    assert [n.name for n in made][:2] == ["jsonl", "webhook:siem.example.org/tgmon/hook"]
    assert made[2].name.startswith("webhook:hooks.slack.com/services/")
    assert all(isinstance(n, WebhookNotifier) and n.timeout == 2.5 for n in made[1:])
    secrets = settings.env.secrets()
    assert SLACK in secrets
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" in secrets
    assert not any(s in made[1].name for s in secrets)


def test_no_webhook_by_default(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.env.webhook_urls == ()
    assert settings.env.alert_webhook_timeout == 10.0
    assert [n.name for n in notifiers_for(settings, tmp_path)] == ["console", "jsonl"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ftp://example.org/x", "entry 1 of 1 has scheme 'ftp', not http or https"),
        (f"{URL},hooks.slack.com/services/T0/B0/XXXX", "entry 2 of 2 has no http:// or https://"),
        (f"{URL},https:///x", "entry 2 of 2 has no host"),
        (f"{URL},{URL}", "entry 2 repeats entry 1"),
    ],
)
def test_bad_webhook_url_is_one_line_naming_the_entry(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (line,) = caught.value.lines
    assert line.startswith("environment (.env): ALERT_WEBHOOK_URL: expected ")
    assert expected in line
    assert "slack" not in line
    assert "example.org" not in line


@pytest.mark.parametrize("value", ["0", "-1", "31", "soon"])
def test_bad_webhook_timeout(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_TIMEOUT", value)
    with pytest.raises(ConfigError, match="ALERT_WEBHOOK_TIMEOUT"):
        load_settings()


def test_two_urls_that_are_one_destination(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://siem.example.org/hook,https://siem.example.org/hook")
    with pytest.raises(ConfigError, match=r"same destination \(webhook:siem.example.org/hook\)"):
        notifiers_for(load_settings(), tmp_path)


# --- through the dispatcher -------------------------------------------------------------------------


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "backoff", lambda attempts: timedelta(milliseconds=1))


async def raise_many(store: SQLiteStore, count: int, destinations: Sequence[str]) -> list[str]:
    posts = [Post(GLADKOV, i, T0 + timedelta(minutes=i), TEXT) for i in range(1, count + 1)]

    def job(tx: Any) -> list[AlertRecord]:
        outcomes = tx.apply(posts)
        return raise_alerts(tx, posts, outcomes, [missile()] * count, list(destinations))

    return [a.id for a in await store.write(job)]


async def run_dispatcher(dispatcher: Dispatcher, within: float = 120) -> bool:
    dispatcher.start()
    try:
        return await dispatcher.drain(within=within)  # `within`: a hang guard, not a speed check
    finally:
        await dispatcher.stop()


async def test_dead_letter_counted_and_the_next_alert_goes_on(store: SQLiteStore, no_backoff: None) -> None:
    first, second = alert(1), alert(2)
    rejected = {first["id"]}
    got: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ident = request.headers["idempotency-key"]
        if ident in rejected:
            return httpx.Response(400, text="bad payload")
        got.append(ident)
        return httpx.Response(200)

    notifier = mock(handler)
    ids = await raise_many(store, 2, [notifier.name])
    assert ids == [first["id"], second["id"]]
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert got == [second["id"]]
    stats = await store.stats()
    assert (stats["dead_letters"], stats["pending_deliveries"]) == (1, 0)
    assert stats["deliveries"][notifier.name] == {"dead": 1, "sent": 1}


async def test_thousand_alerts_through_a_flaky_webhook(store: SQLiteStore, no_backoff: None) -> None:
    """30% of requests fail transiently (503, timeouts, connection resets, 429 with Retry-After 0): none lost,
    none accepted twice, all in order."""
    rng = random.Random(20240312)
    accepted: list[str] = []
    failures = {"503": 0, "timeout": 0, "slow": 0, "reset": 0, "429": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        ident = request.headers["idempotency-key"]
        assert orjson.loads(request.content)["id"] == ident
        roll = rng.random()
        if roll < 0.12:
            failures["503"] += 1
            return httpx.Response(503, text="busy")
        if roll < 0.18:
            failures["timeout"] += 1
            raise httpx.ReadTimeout("timed out", request=request)
        if roll < 0.19:
            failures["slow"] += 1
            await asyncio.sleep(1)  # past the notifier's deadline: cancelled before it accepts
        elif roll < 0.24:
            failures["reset"] += 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        elif roll < 0.30:
            failures["429"] += 1
            return httpx.Response(429, headers={"Retry-After": "0"})
        accepted.append(ident)
        return httpx.Response(200)

    notifier = WebhookNotifier(URL, timeout=0.05, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    ids = await raise_many(store, 1000, [notifier.name])
    assert len(ids) == 1000
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert sum(failures.values()) > 300  # the chaos did happen
    assert all(failures.values())
    assert len(accepted) == len(set(accepted))  # none twice
    assert accepted == ids  # none lost, in order
    stats = await store.stats()
    assert (stats["pending_deliveries"], stats["dead_letters"]) == (0, 0)


async def test_real_server_with_random_503(store: SQLiteStore, no_backoff: None) -> None:
    rng = random.Random(7)

    def decide(body: dict[str, Any]) -> Reply:
        return (503, {}, b"busy") if rng.random() < 0.3 else (200, {}, b"ok")

    with HookServer(decide) as server:
        notifier = WebhookNotifier(server.url)
        ids = await raise_many(store, 200, [notifier.name])
        assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert [body["id"] for body in server.accepted] == ids
    assert server.requests > 200


def test_httpx_request_log_is_quiet() -> None:
    """httpx logs each request with its full URL at INFO; kept at WARNING so the URL never gets that far."""
    configure("debug", "json", io.StringIO())
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
