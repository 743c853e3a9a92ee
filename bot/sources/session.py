"""The Telegram client and its session: where it lives, how it logs in, and what a bad one means.

The session is a file in the data directory (mode 0600), or a StringSession from `TG_SESSION`. The
service never prompts: a missing or unauthorized session is a clear error, exit code 2, so a
container does not hang waiting on stdin. One process per data directory: a second one is refused
at once (an exclusive lock on `tgmon.lock`), instead of failing later with SQLite's "database is
locked" from Telethon's session file, or with Telegram revoking a key used from two places.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from telethon import TelegramClient, errors
from telethon.sessions import StringSession

from bot.errors import ConfigError
from bot.settings import Settings

SESSION_NAME = "tgmon.session"
BOT_SESSION_NAME = "bot.session"
# Telethon sleeps through FloodWaits up to this many seconds without telling anyone; at 0 every wait
# reaches tgmon, which logs it, counts it and resumes from where it was.
FLOOD_SLEEP_THRESHOLD = 0
LOCK_NAME = "tgmon.lock"
UNAUTHORIZED = "the session is not authorized (logged out or revoked): run `tgmon login` again"


class Client(TelegramClient):  # type: ignore[misc]
    """Telethon's client, telling tgmon when it reconnected by itself (after a network drop).

    Telethon hands the sender `_handle_auto_reconnect` as its reconnect callback; this is the one
    place it says a connection came back, and every update pushed meanwhile may be lost.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.reconnect_listeners: list[Callable[[], None]] = []
        super().__init__(*args, **kwargs)

    async def _handle_auto_reconnect(self) -> None:
        await super()._handle_auto_reconnect()
        for listener in list(self.reconnect_listeners):
            listener()


def session_path(settings: Settings) -> Path:
    return settings.data_dir / SESSION_NAME


def _credentials(settings: Settings) -> tuple[int, str]:
    env = settings.env
    if env.api_id is None or env.api_hash is None:
        raise ConfigError(
            "environment (.env): TG_API_ID and TG_API_HASH are required for Telegram: create an application at"
            " https://my.telegram.org (API development tools) and put both in .env (see .env.example)"
        )
    return env.api_id, env.api_hash.get_secret_value()


def _client(settings: Settings, store: StringSession | str, where: Path) -> Client:
    api_id, api_hash = _credentials(settings)
    try:
        client = Client(
            store,
            api_id,
            api_hash,
            flood_sleep_threshold=FLOOD_SLEEP_THRESHOLD,
            catch_up=False,
            device_model="tgmon",
            app_version="tgmon",
        )
    except sqlite3.OperationalError as exc:
        raise ConfigError(f"{where}: the session file cannot be opened ({exc})") from None
    env = settings.env
    if env.dc_id is not None and env.dc_address is not None:
        # A non-default server, such as Telegram's test environment; the session remembers it.
        target = (env.dc_id, env.dc_address, env.dc_port)
        if (client.session.dc_id, client.session.server_address, client.session.port) != target:
            client.session.set_dc(*target)
    return client


def make_client(settings: Settings, *, session: str | None = None) -> Client:
    """A client on the configured session (not connected yet)."""
    path = session_path(settings)
    if session is not None:
        store: StringSession | str = StringSession(session)
    elif settings.env.session is not None:
        store = StringSession(settings.env.session.get_secret_value())
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = str(path.with_suffix(""))  # Telethon appends ".session"
    return _client(settings, store, path)


async def connect_bot(settings: Settings) -> Client:
    """The alert bot (TG_BOT_TOKEN), logged in once and kept in `bot.session` beside the user's."""
    if settings.env.bot_token is None:
        raise ConfigError("environment (.env): TG_BOT_TOKEN is not set")
    path = settings.data_dir / BOT_SESSION_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    client = _client(settings, str(path.with_suffix("")), path)
    try:
        await client.start(bot_token=settings.env.bot_token.get_secret_value())
    except (errors.AccessTokenInvalidError, errors.AccessTokenExpiredError):
        await client.disconnect()
        raise ConfigError(
            "environment (.env): TG_BOT_TOKEN was refused by Telegram: copy the token @BotFather gave"
            " (or get a new one with /revoke)"
        ) from None
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)
    return client


@contextlib.contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Hold the data directory's lock; a second tgmon on the same session is refused with a clear error."""
    path = settings.data_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ConfigError(
                f"{settings.data_dir}: another tgmon process (pid {holder}) is using this data directory and its"
                " Telegram session: stop it first (one client per session), or give this one its own --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def protect(settings: Settings) -> None:
    """The session file grants full access to the account: readable by its owner only."""
    path = session_path(settings)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)


async def connect_authorized(settings: Settings) -> Client:
    """Connect the service's client; a missing, revoked or unauthorized session is a ConfigError."""
    _credentials(settings)
    if settings.env.session is None and not session_path(settings).exists():
        raise ConfigError(
            f"{session_path(settings)}: no Telegram session yet: run `tgmon login` once (in Docker:"
            " `docker compose run --rm tgmon login`), or set TG_SESSION to a StringSession"
        )
    client = make_client(settings)
    await client.connect()
    if not await client.is_user_authorized():
        await client.disconnect()
        raise ConfigError(f"Telegram: {UNAUTHORIZED}")
    protect(settings)
    return client


async def login(settings: Settings, *, string: bool) -> str | None:
    """Interactive login on a terminal: phone, code, 2FA password. Returns a StringSession if asked."""
    client = make_client(settings, session="" if string else None)
    await client.start(
        phone=lambda: input("Phone number (international format, e.g. +44…): "),
        code_callback=lambda: input("Code Telegram sent you: "),
        password=lambda: getpass.getpass("Two-step verification password: "),
    )
    me = await client.get_me()
    saved = StringSession.save(client.session) if string else None
    await client.disconnect()
    protect(settings)
    name = getattr(me, "username", None) or getattr(me, "first_name", None) or "your account"
    print(f"Logged in as {name}.")
    return saved
