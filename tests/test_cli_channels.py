"""`tgmon channels list|add|remove`: channels.toml edited in place (comments kept), the archive's view of each."""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.models import Channel, Post
from bot.store import ChannelRecord
from bot.store.sqlite import open_store

RUNNER = CliRunner()

CHANNELS_TOML = """\
# Channels tgmon follows. Keep this comment!
[[channel]]
username = "gladkov"   # Belgorod governor
tags = ["governors"]

# Kursk
[[channel]]
id = 1234567890
title = "Курская область"
"""


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    (config / "channels.toml").write_text(CHANNELS_TOML, encoding="utf-8")
    return config, data


def tgmon(dirs: tuple[Path, Path], group: str, command: str, *args: str) -> Result:
    config, data = dirs
    return RUNNER.invoke(
        app, [group, command, "--config-dir", str(config), "--data-dir", str(data), *args],
        env={"TGMON_LOG_FORMAT": "json", "COLUMNS": "200"}, catch_exceptions=False,
    )  # fmt: skip


def channels_toml(dirs: tuple[Path, Path]) -> str:
    return (dirs[0] / "channels.toml").read_text(encoding="utf-8")


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]


def test_add_appends_the_channel_keeping_the_comments(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "add", "@kursk_news", "--tag", "governors", "--tag", "kursk")

    assert result.exit_code == 0, result.output
    assert "Added @kursk_news" in result.stdout
    text = channels_toml(dirs)
    assert text.startswith(CHANNELS_TOML)  # every line the operator wrote, comments included, unchanged
    channels = tomllib.loads(text)["channel"]
    assert channels[-1] == {"username": "kursk_news", "tags": ["governors", "kursk"]}
    assert len(channels) == 3
    assert not list(dirs[0].glob("*.new"))


def test_add_by_link_or_id_with_options(dirs: tuple[Path, Path]) -> None:
    assert tgmon(dirs, "channels", "add", "https://t.me/s/belgorod_news", "--no-join").exit_code == 0
    assert tgmon(dirs, "channels", "add", "--title", "Суджа", "--download-media", "--", "-1001987654321").exit_code == 0

    channels = tomllib.loads(channels_toml(dirs))["channel"]
    assert channels[2] == {"username": "belgorod_news", "join": False}
    assert channels[3] == {"id": 1987654321, "title": "Суджа", "download_media": True}


def test_add_creates_channels_toml_when_there_is_none(tmp_path: Path) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()

    result = tgmon((config, data), "channels", "add", "@gladkov")

    assert result.exit_code == 0, result.output
    assert tomllib.loads((config / "channels.toml").read_text())["channel"] == [{"username": "gladkov"}]


@pytest.mark.parametrize("ref", ["@gladkov", "GLADKOV", "t.me/gladkov", "1234567890", "-1001234567890"])
def test_adding_a_listed_channel_is_a_one_line_error(dirs: tuple[Path, Path], ref: str) -> None:
    result = tgmon(dirs, "channels", "add", "--", ref)

    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "already listed" in lines[0]
    assert channels_toml(dirs) == CHANNELS_TOML


@pytest.mark.parametrize("ref", ["@ab", "not a channel", "https://example.com/x", "@bad-name!", "-12"])
def test_adding_a_bad_reference_is_a_one_line_error(dirs: tuple[Path, Path], ref: str) -> None:
    result = tgmon(dirs, "channels", "add", "--", ref)

    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {ref}:")
    assert "Traceback" not in result.output
    assert channels_toml(dirs) == CHANNELS_TOML


def test_add_takes_a_marked_channel_id_as_telegram_tools_print_it(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "add", "-1001987654321")

    assert result.exit_code == 0, result.output
    assert tomllib.loads(channels_toml(dirs))["channel"][-1] == {"id": 1987654321}


def test_remove_takes_the_channel_out_and_keeps_the_rest(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "remove", "@gladkov")

    assert result.exit_code == 0, result.output
    assert "Removed @gladkov" in result.stdout
    text = channels_toml(dirs)
    assert tomllib.loads(text)["channel"] == [{"id": 1234567890, "title": "Курская область"}]
    assert "# Channels tgmon follows. Keep this comment!" in text

    assert tgmon(dirs, "channels", "remove", "1234567890").exit_code == 0
    assert "channel" not in tomllib.loads(channels_toml(dirs))


def test_removing_a_channel_not_listed_is_a_one_line_error(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "remove", "@nobody_here")

    assert result.exit_code == 2
    [line] = error_lines(result)
    assert "is not listed" in line
    assert "@gladkov" in line
    assert channels_toml(dirs) == CHANNELS_TOML


def test_list_json_without_a_database_says_not_resolved_yet(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "list", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["channel"], r["id"], r["title"], r["tags"], r["status"], r["posts"]) for r in rows] == [
        ("@gladkov", None, None, ["governors"], "not resolved yet", 0),
        ("1234567890", 1234567890, "Курская область", [], "not resolved yet", 0),
    ]
    assert not (dirs[1] / "tgmon.db").exists()  # listing does not create a database


def test_list_json_shows_what_the_archive_knows(dirs: tuple[Path, Path]) -> None:
    async def seed() -> None:
        store = await open_store(dirs[1])
        try:
            gladkov = Channel(1001, "Вячеслав Гладков", "gladkov")
            when = datetime(2024, 3, 12, 5, 41, tzinfo=UTC)
            await store.write(lambda tx: tx.save_channel(ChannelRecord(1001, "gladkov", "Вячеслав Гладков", 42)))
            await store.write(
                lambda tx: tx.save_channel(
                    ChannelRecord(1234567890, None, "Курская область", 7, False, "private, or the account was banned")
                )
            )
            await store.write(lambda tx: tx.apply([Post(gladkov, 1, when, "a"), Post(gladkov, 2, when, "b")]))
        finally:
            await store.close()

    asyncio.run(seed())

    result = tgmon(dirs, "channels", "list", "--json")

    assert result.exit_code == 0, result.output
    gladkov, kursk = json.loads(result.stdout)
    assert (gladkov["id"], gladkov["title"], gladkov["status"], gladkov["posts"]) == (
        1001,
        "Вячеслав Гладков",
        "ok",
        2,
    )
    assert gladkov["last_post"].startswith("2024-03-12T05:41")
    assert kursk["status"] == "unavailable: private, or the account was banned"
    assert kursk["posts"] == 0


def test_list_table_names_the_file(dirs: tuple[Path, Path]) -> None:
    result = tgmon(dirs, "channels", "list")

    assert result.exit_code == 0, result.output
    assert "2 channels in" in result.stdout
    assert "@gladkov" in result.stdout
    assert "not resolved yet" in result.stdout
