"""The Telegram session: one process per data directory, no silent FloodWait sleeps, test DCs, clear errors.

Constructing a TelegramClient touches no network; nothing here connects.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.errors import ConfigError
from bot.settings import Channels, EnvSettings, Settings, load_env
from bot.sources.session import (
    FLOOD_SLEEP_THRESHOLD,
    LOCK_NAME,
    Client,
    connect_authorized,
    exclusive,
    make_client,
    session_path,
)
from tests.helpers import REPO


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_data_dir: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("TGMON_DATA_DIR", str(tmp_data_dir))
    monkeypatch.setenv("TG_API_ID", "12345")
    monkeypatch.setenv("TG_API_HASH", "0123456789abcdef0123456789abcdef")
    return monkeypatch


def settings() -> Settings:
    return Settings(env=EnvSettings(), channels=Channels.of(()))


@contextlib.contextmanager
def closing(client: Client) -> Iterator[Client]:
    try:
        yield client
    finally:
        client.session.close()


# --- one process per data directory ------------------------------------------------------------


def test_a_second_holder_of_the_data_directory_is_refused_naming_the_pid_and_the_directory(
    env: pytest.MonkeyPatch, tmp_data_dir: Path
) -> None:
    with exclusive(settings()):
        assert (tmp_data_dir / LOCK_NAME).read_text() == str(os.getpid())
        with pytest.raises(ConfigError) as refused, exclusive(settings()):
            pytest.fail("a second holder got the lock")
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message
    assert str(tmp_data_dir) in message
    assert "--data-dir" in message


def test_the_lock_is_released_and_cleared_on_exit(env: pytest.MonkeyPatch, tmp_data_dir: Path) -> None:
    with exclusive(settings()):
        pass
    assert (tmp_data_dir / LOCK_NAME).read_text() == ""
    with exclusive(settings()):  # free again
        assert (tmp_data_dir / LOCK_NAME).read_text() == str(os.getpid())


def test_the_lock_is_released_when_the_service_fails(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError), exclusive(settings()):
        raise RuntimeError("crash")
    with exclusive(settings()):
        pass


def test_another_process_is_refused_while_the_lock_is_held(env: pytest.MonkeyPatch, tmp_data_dir: Path) -> None:
    child = textwrap.dedent(
        """
        from bot.errors import ConfigError
        from bot.settings import Channels, EnvSettings, Settings
        from bot.sources.session import exclusive
        try:
            with exclusive(Settings(env=EnvSettings(), channels=Channels.of(()))):
                print("acquired")  # the parent holds the lock: reaching this is the failure
        except ConfigError as exc:
            print("refused:", exc)
        """
    )
    run = [sys.executable, "-c", child]
    child_env = {**os.environ, "TGMON_DATA_DIR": str(tmp_data_dir)}

    with exclusive(settings()):
        held = subprocess.run(run, cwd=REPO, env=child_env, capture_output=True, text=True, timeout=60, check=True)

    assert held.stdout.startswith("refused:"), held.stdout + held.stderr
    assert f"pid {os.getpid()}" in held.stdout
    assert str(tmp_data_dir) in held.stdout


# --- the client --------------------------------------------------------------------------------


async def test_make_client_never_sleeps_through_flood_waits(env: pytest.MonkeyPatch, tmp_data_dir: Path) -> None:
    with closing(make_client(settings())) as client:
        assert FLOOD_SLEEP_THRESHOLD == 0
        assert client.flood_sleep_threshold == 0
        assert isinstance(client, Client)
        assert client.reconnect_listeners == []
        assert not client.is_connected()
    assert session_path(settings()).exists()  # a file session in the data directory


async def test_make_client_points_the_session_at_the_configured_dc_and_the_session_remembers_it(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("TG_DC_ID", "2")
    env.setenv("TG_DC_ADDRESS", "149.154.167.40")
    env.setenv("TG_DC_PORT", "80")

    with closing(make_client(settings())) as client:
        assert (client.session.dc_id, client.session.server_address, client.session.port) == (2, "149.154.167.40", 80)

    env.delenv("TG_DC_ID")
    env.delenv("TG_DC_ADDRESS")
    env.delenv("TG_DC_PORT")
    with closing(make_client(settings())) as again:
        assert (again.session.dc_id, again.session.server_address, again.session.port) == (2, "149.154.167.40", 80)


async def test_make_client_uses_a_string_session_from_the_environment(
    env: pytest.MonkeyPatch, tmp_data_dir: Path
) -> None:
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    source = StringSession()
    source.set_dc(2, "149.154.167.51", 443)
    source.auth_key = AuthKey(bytes(range(256)))
    env.setenv("TG_SESSION", source.save())

    client = make_client(settings())

    assert isinstance(client.session, StringSession)
    assert client.session.auth_key is not None
    assert client.session.auth_key.key == bytes(range(256))
    assert (client.session.dc_id, client.session.server_address) == (2, "149.154.167.51")
    assert not session_path(settings()).exists()  # no file written


async def test_make_client_without_api_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="TG_API_ID and TG_API_HASH"):
        make_client(settings())


async def test_connect_authorized_without_a_session_tells_to_run_tgmon_login(
    env: pytest.MonkeyPatch, tmp_data_dir: Path
) -> None:
    with pytest.raises(ConfigError) as refused:
        await connect_authorized(settings())

    assert "tgmon login" in str(refused.value)
    assert str(session_path(settings())) in str(refused.value)
    assert not session_path(settings()).exists()  # nothing created, nothing connected


# --- settings ----------------------------------------------------------------------------------


def test_dc_id_without_dc_address_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_DC_ID", "2")
    with pytest.raises(ValidationError, match="TG_DC_ID and TG_DC_ADDRESS go together"):
        EnvSettings()
    with pytest.raises(ConfigError, match="TG_DC_ADDRESS"):
        load_env()


def test_dc_address_without_dc_id_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_DC_ADDRESS", "149.154.167.40")
    with pytest.raises(ValidationError, match="go together"):
        EnvSettings()


def test_dc_id_out_of_range_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_DC_ID", "9")
    monkeypatch.setenv("TG_DC_ADDRESS", "149.154.167.40")
    with pytest.raises(ConfigError, match="TG_DC_ID"):
        load_env()
