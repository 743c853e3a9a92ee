"""The `tgmon` command: one `error:` line per problem and exit code 2 on bad input, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot import __version__
from bot.cli import app
from bot.health import Snapshot, heartbeat_path, write_heartbeat
from tests.helpers import REPO, write_jsonl
from tests.test_pipeline import FEED

RUNNER = CliRunner()


def tgmon(*args: str, env: dict[str, str] | None = None) -> Result:
    return RUNNER.invoke(app, list(args), env=env, catch_exceptions=False)


def tgmon_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m bot …` in a child process (the timeout is a hang guard, not a speed check)."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("TGMON_", "TG_"))}
    child_env.update({"TGMON_NOTIFIERS": "jsonl", "TGMON_LOG_FORMAT": "json", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_lines(result: Result) -> list[str]:
    """stderr without log records (JSON lines when stderr is not a terminal)."""
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]


def assert_user_error(result: Result, *fragments: str) -> list[str]:
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert lines
    assert all(line.startswith("error: ") for line in lines), lines
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert any(fragment in line for line in lines), (fragment, lines)
    return lines


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the pipeline test's feed, replayed by a real `tgmon replay` process."""
    base = tmp_path_factory.mktemp("replayed")
    feed = write_jsonl(base / "feed.jsonl", FEED)
    data = base / "data"
    done = tgmon_process("replay", str(feed), "--data-dir", str(data), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "5 new posts, 1 edits, 1 deletions" in done.stderr
    return data


# --- check-config -----------------------------------------------------------------------------------


def test_check_config_bad_channels(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.toml").write_text(
        '[[channel]]\nusername = "@abcdef"\ncolour = "red"\n\n[[channel]]\nid = "abc"\n', encoding="utf-8"
    )
    result = tgmon("check-config", "--config-dir", str(config), "--data-dir", str(tmp_path / "data"))
    lines = assert_user_error(result, "channel[0].colour: unknown key", "channel[1].id: expected an integer")
    assert len(lines) == 2
    assert all(str(config / "channels.toml") in line for line in lines)


def test_check_config_duplicate_channel(tmp_path: Path) -> None:
    (tmp_path / "channels.toml").write_text(
        '[[channel]]\nusername = "@abcdef"\n[[channel]]\nusername = "t.me/abcdef"\n', encoding="utf-8"
    )
    result = tgmon("check-config", "--config-dir", str(tmp_path))
    assert_user_error(result, "listed twice")


def test_check_config_bad_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nid = "r1"\ncategory = "c"\nregex = ["(("]\nseverity = "loud"\n', encoding="utf-8")
    result = tgmon("check-config", "--config-dir", str(tmp_path), "--rules", str(rules))
    lines = assert_user_error(result, "rule[0] (r1).regex", "rule[0] (r1).severity")
    assert len(lines) == 2


def test_check_config_bad_environment(tmp_path: Path) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    result = tgmon(
        "check-config",
        "--config-dir",
        str(tmp_path),
        env={"TGMON_TIMEZONE": "Mars/Base", "TGMON_NOTIFIERS": "pigeon", "TG_API_HASH": secret},
    )
    lines = assert_user_error(result, "environment (.env): TGMON_TIMEZONE: expected", "TGMON_NOTIFIERS")
    assert len(lines) == 2
    assert secret not in result.output


def test_check_config_ok(tmp_path: Path) -> None:
    (tmp_path / "channels.toml").write_text('[[channel]]\nusername = "@abcdef"\ntags = ["news"]\n', encoding="utf-8")
    result = tgmon("check-config", "--config-dir", str(tmp_path), "--rules", str(REPO / "config" / "rules.toml"))
    assert result.exit_code == 0, result.output
    assert "config ok: 1 channels" in result.stdout


# --- stats, search, export on a replayed archive ------------------------------------------------------


def test_stats_json(replayed: Path) -> None:
    result = tgmon("stats", "--json", "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    for key in ("posts", "channels", "media", "edits", "deletions", "alerts"):
        assert isinstance(totals[key], int), key
    assert (totals["posts"], totals["channels"], totals["media"], totals["edits"], totals["deletions"]) == (
        5,
        3,
        3,
        1,
        1,
    )
    assert totals["alerts"] == 3
    assert totals["pending_deliveries"] == 0


def test_stats_table(replayed: Path) -> None:
    result = tgmon("stats", "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    assert "posts" in result.stdout


def test_stats_on_an_empty_data_dir(tmp_path: Path) -> None:
    result = tgmon("stats", "--data-dir", str(tmp_path))
    assert_user_error(result, "no archive here yet")
    assert not (tmp_path / "tgmon.db").exists()


def test_stats_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "tgmon.db").write_text("hello " * 1000, encoding="utf-8")
    assert_user_error(tgmon("stats", "--data-dir", str(tmp_path)), "not a tgmon database")


def test_search(replayed: Path) -> None:
    result = tgmon("search", "эвакуации", "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    assert "Сибирский батальон #311" in result.stdout
    assert "эвакуация" in result.stdout


def test_search_json(replayed: Path) -> None:
    result = tgmon("search", "Ракетной опасности", "--json", "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["channel_id"], row["message_id"]) == (1902000001, 4101)
    assert row["text"].endswith("укрытия.")


def test_search_channel_filter_and_no_match(replayed: Path) -> None:
    assert (
        json.loads(
            tgmon("search", "эвакуация", "--json", "--channel", "@gladkov_demo", "--data-dir", str(replayed)).stdout
        )
        == []
    )
    result = tgmon("search", "землетрясение", "--data-dir", str(replayed))
    assert result.exit_code == 0
    assert "no posts match" in result.stderr


def test_search_errors(replayed: Path, tmp_path: Path) -> None:
    assert_user_error(tgmon("search", "!!!", "--data-dir", str(replayed)), "no words")
    assert_user_error(tgmon("search", "тревога", "--since", "someday", "--data-dir", str(replayed)), "--since")
    assert_user_error(tgmon("search", "тревога", "--data-dir", str(tmp_path)), "no archive here yet")


def test_export_jsonl(replayed: Path) -> None:
    result = tgmon("export", "--format", "jsonl", "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5
    for row in rows:
        assert {"channel_id", "message_id", "date", "text", "deleted", "versions", "media"} <= set(row)
    by_id = {row["message_id"]: row for row in rows}
    assert by_id[4101]["versions"] == 2
    assert by_id[310]["deleted"] is True
    assert [m["kind"] for m in by_id[311]["media"]] == ["video", "photo"]


def test_export_csv_to_file(replayed: Path, tmp_path: Path) -> None:
    target = tmp_path / "posts.csv"
    result = tgmon("export", "--format", "csv", "--output", str(target), "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    assert "exported 5 posts" in result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 5
    assert {"channel_id", "message_id", "text", "deleted", "versions", "media"} <= set(rows[0])
    by_id = {row["message_id"]: row for row in rows}
    assert json.loads(by_id["311"]["media"])[0]["kind"] == "video"
    assert by_id["310"]["deleted"] == "True"
    assert by_id["4102"]["media"] == ""


def test_export_since(replayed: Path) -> None:
    result = tgmon("export", "--since", "2024-03-12T03:04:00Z", "--data-dir", str(replayed))
    assert sorted(json.loads(line)["message_id"] for line in result.stdout.splitlines()) == [311, 4102]


def test_export_bad_format(replayed: Path) -> None:
    assert_user_error(tgmon("export", "--format", "xml", "--data-dir", str(replayed)), "--format")


# --- replay ---------------------------------------------------------------------------------------------


def test_replay_missing_file(tmp_path: Path) -> None:
    result = tgmon("replay", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path / "data"))
    assert_user_error(result, "no such file")
    assert not (tmp_path / "data" / "tgmon.db").exists()


def test_replay_folder_without_export(tmp_path: Path) -> None:
    assert_user_error(tgmon("replay", str(tmp_path), "--data-dir", str(tmp_path / "data")), "result.json")


def test_replay_bad_rules_file(tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", FEED[:1])
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nid = "x"\n', encoding="utf-8")
    result = tgmon("replay", str(feed), "--rules", str(rules), "--data-dir", str(tmp_path / "data"))
    assert_user_error(result, "rule[0] (x).category: required key is missing")


def test_replay_reports_bad_lines_and_resumes(tmp_path: Path) -> None:
    feed = write_jsonl(tmp_path / "feed.jsonl", [*FEED[:3], "not json\n"])
    data = tmp_path / "data"
    first = tgmon_process("replay", str(feed), "--data-dir", str(data), "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "1 bad records" in first.stderr
    assert "replay.bad_record" in first.stderr
    second = tgmon_process("replay", str(feed), "--data-dir", str(data), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "0 new posts" in second.stderr
    stats = tgmon("stats", "--json", "--data-dir", str(data))
    assert json.loads(stats.stdout)["posts"] == 3


def test_version() -> None:
    result = tgmon("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tgmon {__version__}"


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    result = tgmon("stats", "--colour", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --- health ---------------------------------------------------------------------------------------------


def beat(data: Path, *, seconds_ago: float = 0, **fields: object) -> None:
    """A heartbeat as `tgmon run` writes it."""
    data.mkdir(exist_ok=True)
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    write_heartbeat(heartbeat_path(data), Snapshot(at, os.getpid(), **fields))  # type: ignore[arg-type]


def test_health_when_nothing_runs(tmp_path: Path) -> None:
    result = tgmon("health", "--data-dir", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [
        f"unhealthy: no heartbeat at {tmp_path / 'heartbeat.json'}: tgmon run is not running"
    ]
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_health_on_a_fresh_heartbeat(tmp_path: Path) -> None:
    beat(tmp_path, telegram_connected=True, queued=2, outbox_depth=0)
    result = tgmon("health", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"healthy: heartbeat [01] s ago, Telegram connected, 2 queued, 0 deliveries waiting\n", result.stdout
    )
    assert error_lines(result) == []


def test_health_on_a_stale_heartbeat_and_max_age(tmp_path: Path) -> None:
    beat(tmp_path, seconds_ago=120, telegram_connected=True)
    stale = tgmon("health", "--data-dir", str(tmp_path))
    assert stale.exit_code == 1, stale.output
    (line,) = error_lines(stale)
    assert re.fullmatch(r"unhealthy: heartbeat 12[01] s old \(limit 60 s\): tgmon run is stuck or gone", line)
    assert tgmon("health", "--max-age", "300", "--data-dir", str(tmp_path)).exit_code == 0


def test_health_says_why(tmp_path: Path) -> None:
    beat(tmp_path, telegram_connected=False)
    result = tgmon("health", "--data-dir", str(tmp_path))
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result)
    assert line.startswith("unhealthy: Telegram not connected")


def test_health_bad_max_age_is_a_usage_error(tmp_path: Path) -> None:
    result = tgmon("health", "--max-age", "0", "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--max-age" in result.output


# --- backup ---------------------------------------------------------------------------------------------


def test_backup_into_a_folder(replayed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    result = tgmon("backup", str(folder), "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    (copy,) = folder.iterdir()
    assert re.fullmatch(r"tgmon-\d{8}-\d{6}\.db", copy.name)
    assert result.stdout.startswith(f"backup written: {copy} (")
    assert "integrity ok" in result.stdout
    assert copy.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 5


def test_backup_to_a_file(replayed: Path, tmp_path: Path) -> None:
    target = tmp_path / "tgmon-copy.db"
    result = tgmon("backup", str(target), "--data-dir", str(replayed))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"backup written: {target} (")
    (tmp_path / "restored").mkdir()  # restored: the copy is a whole archive
    target.rename(tmp_path / "restored" / "tgmon.db")
    stats = tgmon("stats", "--json", "--data-dir", str(tmp_path / "restored"))
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["posts"] == 5


def test_backup_to_a_missing_folder(replayed: Path, tmp_path: Path) -> None:
    target = tmp_path / "gone" / "copy.db"
    lines = assert_user_error(tgmon("backup", str(target), "--data-dir", str(replayed)), str(target), "cannot write")
    assert len(lines) == 1
    assert not (tmp_path / "gone").exists()


def test_backup_without_an_archive(tmp_path: Path) -> None:
    lines = assert_user_error(
        tgmon("backup", str(tmp_path / "copy.db"), "--data-dir", str(tmp_path / "data")), "no archive here yet"
    )
    assert len(lines) == 1
    assert not (tmp_path / "copy.db").exists()
