"""The Telegram client and its session: where it lives, how it logs in, and what a bad one means.

The session is a file in the data directory (mode 0600), or a StringSession from `TG_SESSION`. The
service never prompts: a missing or unauthorized session is a clear error, exit code 2, so a
container does not hang waiting on stdin.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from pathlib import Path

from telethon import TelegramClient
from telethon.sessions import StringSession

from bot.errors import ConfigError
from bot.settings import Settings

SESSION_NAME = "tgmon.session"
FLOOD_SLEEP_THRESHOLD = 5  # seconds Telethon may sleep silently on FloodWait; longer waits are ours to log


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


def make_client(settings: Settings, *, session: str | None = None) -> TelegramClient:
    """A client on the configured session (not connected yet)."""
    api_id, api_hash = _credentials(settings)
    if session is not None:
        store: StringSession | str = StringSession(session)
    elif settings.env.session is not None:
        store = StringSession(settings.env.session.get_secret_value())
    else:
        path = session_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = str(path.with_suffix(""))  # Telethon appends ".session"
    return TelegramClient(
        store,
        api_id,
        api_hash,
        flood_sleep_threshold=FLOOD_SLEEP_THRESHOLD,
        catch_up=False,
        device_model="tgmon",
        app_version="tgmon",
    )


def protect(settings: Settings) -> None:
    """The session file grants full access to the account: readable by its owner only."""
    path = session_path(settings)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)


async def connect_authorized(settings: Settings) -> TelegramClient:
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
        raise ConfigError("Telegram: the session is not authorized (logged out or revoked): run `tgmon login` again")
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
