"""Log redaction: the API hash, session string, bot token and phone numbers never reach a log line,
in JSON or on the console, however they get into an event. Also the error counts the metrics serve."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

import bot.logging
from bot.cli.common import settings_from
from bot.logging import (
    REDACTED,
    configure,
    error_counts,
    get_logger,
    recent_problems,
    redact,
    redact_text,
    register_secrets,
)


def string_session() -> str:
    """A StringSession as `tgmon login` prints it: DC, address, port and a 256-byte auth key."""
    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(random.Random(7).randbytes(256))
    return str(session.save())


API_HASH = "3f1c9a7e5b2d4f608a9c1e3b5d7f9a2c"
SESSION = string_session()
BOT_TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw-x"
PHONES = ("+79991234567", "+7 999 123-45-67", "+7 (999) 123-45-67", "+7-999-123-45-67")
# What must not show up, whole or in a telling piece: a piece shows in a cut or wrapped rendering.
FORBIDDEN = (
    API_HASH,
    SESSION,
    SESSION[:24],
    SESSION[-24:],
    BOT_TOKEN,
    BOT_TOKEN.split(":")[1],
    *PHONES,
    "9991234567",
    "999 123",
    "123-45-67",
)


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets other tests registered (a chat id in an Apprise URL) must not decide what these tests see masked."""
    monkeypatch.setattr(bot.logging, "_secrets", set())


@pytest.fixture
def service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets in the environment, loaded and registered the way every `tgmon` command does."""
    monkeypatch.setenv("TG_API_ID", "123456")
    monkeypatch.setenv("TG_API_HASH", API_HASH)
    monkeypatch.setenv("TG_SESSION", SESSION)
    monkeypatch.setenv("TG_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("TG_PHONE", PHONES[0])  # not a setting tgmon reads: an operator's note in .env
    settings_from(None, None, None)


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.configure(**saved)


def log_everything() -> None:
    """Every way a secret could get into an event."""
    log = get_logger("tgmon.test")
    # As plain values under harmless names.
    log.info("values", api=API_HASH, string=SESSION, bot=BOT_TOKEN, number=PHONES[0])
    # Nested in dicts, lists, tuples, sets, bytes.
    log.info(
        "nested",
        payload={"a": [API_HASH, {"b": SESSION}], "c": (BOT_TOKEN, PHONES[1])},
        numbers=list(PHONES),
        unique={API_HASH},
        raw=SESSION.encode(),
        by_value={SESSION: "a secret as a key"},
    )
    # Inside longer strings: the event itself, %-formatting, other values.
    log.warning(f"could not resume {SESSION} with hash={API_HASH}", detail=f"token {BOT_TOKEN} for {PHONES[2]}")
    log.info("login for %s with %s", PHONES[3], BOT_TOKEN)
    # Under names that say what they are.
    log.info(
        "keys",
        api_hash=API_HASH,
        session=SESSION,
        token=BOT_TOKEN,
        phone=PHONES[0],
        config={"TG_API_HASH": API_HASH, "tg_session": SESSION, "bot_token": BOT_TOKEN, "phone_number": PHONES[1]},
    )
    # Bound context.
    structlog.contextvars.bind_contextvars(account=PHONES[1])
    log.bind(who=PHONES[2]).info("bound")
    structlog.contextvars.clear_contextvars()
    # Through an exception's message, with the traceback's local variables holding them too.
    api_hash, session, token, phone = API_HASH, SESSION, BOT_TOKEN, PHONES[0]
    try:
        raise RuntimeError(f"auth failed: hash {api_hash} session {session} token {token} phone {phone}")
    except RuntimeError as exc:
        log.exception("login.failed")
        log.error("login.failed_again", error=exc)
        log.error("login.failed_text", error=str(exc))
        logging.getLogger("telethon.network").exception("telethon says")  # a library, through the stdlib
    logging.getLogger("telethon.client").warning("session %s for %s", session, phone)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_never_reach_the_log(service_settings: None, restore_structlog: None, fmt: str) -> None:
    stream = io.StringIO()
    configure("debug", fmt, stream=stream)  # as `tgmon run` does, onto a stream we can read
    log_everything()
    output = stream.getvalue()

    for event in ("values", "nested", "keys", "bound", "login.failed", "login.failed_again", "telethon says"):
        assert event in output, f"{event} was not logged: the test proves nothing"
    assert "RuntimeError: auth failed" in output  # the traceback is there, masked
    assert output.count(REDACTED) >= 30
    leaks = [secret for secret in FORBIDDEN if secret in output]
    assert leaks == [], output
    if fmt == "json":
        assert all(json.loads(line) for line in output.splitlines() if line.startswith("{"))


def test_recent_problems_hold_no_secrets(service_settings: None, restore_structlog: None) -> None:
    """`/status` shows the last warnings and errors in the analyst chat."""
    configure("debug", "console", stream=io.StringIO())
    log_everything()
    shown = repr(recent_problems())
    assert "login.failed" in shown
    assert [secret for secret in FORBIDDEN if secret in shown] == []


def test_phone_numbers_and_bot_tokens_are_masked_unregistered() -> None:
    """Other people's numbers and other bots' tokens are never registered: the patterns catch them."""
    text = redact_text("call +380 67 123 4567 or +44 (20) 7946-0958; bot 987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0")
    assert text == f"call {REDACTED} or {REDACTED}; bot {REDACTED}"


def test_numbers_that_are_not_phones_stay() -> None:
    text = "channel -1001234567890, message 12345, 2024-03-12 03:00:00+00:00, 3+4 posts, score +12.5"
    assert redact_text(text) == text


def test_values_without_secrets_pass_unchanged() -> None:
    """Masking must not break what it does not mask: tuple keys, objects a renderer formats itself."""
    path, moment = Path("/data/tgmon.db"), datetime(2024, 3, 12, tzinfo=UTC)
    event = {"event": "x", "counts": {(1001, 5): 2}, "path": path, "at": moment, "n": 3, "ok": True, "none": None}
    assert redact(None, "info", dict(event)) == event
    assert redact(None, "info", dict(event))["path"] is path


def test_short_and_empty_values_are_not_registered() -> None:
    register_secrets(["", "abc"])  # an unset or absurd value must not mask every "abc" in every line
    assert redact_text("abc def") == "abc def"


# --- error counts ---------------------------------------------------------------------------------------


def test_errors_are_counted_by_event(restore_structlog: None) -> None:
    configure("debug", "json", stream=io.StringIO())
    before = error_counts()
    log = get_logger("tgmon.test")
    log.error("test.counted")
    log.error("test.counted")
    log.warning("test.not_counted")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("test.counted_exception")
    logging.getLogger("telethon").error("test.counted_foreign")
    after = error_counts()
    grown = {event: count - before.get(event, 0) for event, count in after.items() if count != before.get(event, 0)}
    assert grown == {"test.counted": 2, "test.counted_exception": 1, "test.counted_foreign": 1}
    after["test.counted"] = 1000  # a copy: the caller cannot change the counts
    assert error_counts()["test.counted"] == before.get("test.counted", 0) + 2
