"""`tgmon check-config` on the alert side: where alerts go, config/alerts.toml read, and its mistakes as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.test_cli import assert_user_error, tgmon

RULES = str(REPO / "config" / "rules.toml")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "channels.toml").write_text('[[channel]]\nusername = "@gladkov_demo"\n', encoding="utf-8")
    return folder


def check(config: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = tgmon("check-config", "--config-dir", str(config), "--rules", RULES, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_destinations_and_policy_are_listed(config: Path) -> None:
    (config / "alerts.toml").write_text(
        'cooldown = "2m"\ndedup_window = "5m"\n\n[[route]]\nchat = -1001234567890\ncategories = ["missile"]\n',
        encoding="utf-8",
    )
    code, stdout, stderr = check(
        config,
        {
            "TGMON_NOTIFIERS": "jsonl",
            "ANALYST_CHAT_ID": "-1001234567890, -1009876543210",
            "ANALYST_USER_IDS": "7001",
            "ALERT_WEBHOOK_URL": "https://hooks.example.org/a,https://hooks.example.org/b",
        },
    )
    assert code == 0, stderr
    assert stdout.rstrip("\n").endswith(
        "alerts to jsonl, telegram:-1001234567890, telegram:-1009876543210, webhook ×2"
        " (cooldown 120 s, duplicates folded within 5 min, 1 routes)"
    )
    assert "commands.nobody_allowed" not in stderr
    assert "hooks.example.org" not in stdout  # webhook URLs are secrets: counted, never printed


def test_defaults_without_alerts_toml(config: Path) -> None:
    code, stdout, _ = check(config, {"TGMON_NOTIFIERS": "console,jsonl"})
    assert code == 0
    assert stdout.rstrip("\n").endswith(
        "alerts to console, jsonl (cooldown 60 s, duplicates folded within 10 min, 0 routes)"
    )


def test_nowhere(config: Path) -> None:
    code, stdout, _ = check(config, {"TGMON_NOTIFIERS": ""})
    assert code == 0
    assert "alerts to nowhere (" in stdout


def test_analyst_chats_without_analysts_warn(config: Path) -> None:
    code, _, stderr = check(config, {"ANALYST_CHAT_ID": "-1001234567890", "TGMON_LOG_FORMAT": "json"})
    assert code == 0
    assert '"event": "commands.nobody_allowed"' in stderr
    assert "ANALYST_USER_IDS" in stderr


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ('cooldown = "soon"\n', "alerts.toml: cooldown: expected a duration such as 90s, 10m, 2h or 1d (got 'soon')"),
        (
            'dedup_window = "-5m"\n',
            "alerts.toml: dedup_window: expected a duration such as 90s, 10m, 2h or 1d (got '-5m')",
        ),
        (
            '[[route]]\nchat = -100123\ndestination = "jsonl"\n',
            "alerts.toml: route[0]: give `chat` (a Telegram chat id) or `destination`, not both",
        ),
        ('[[route]]\ncategories = ["uav"]\n', "alerts.toml: route[0]: give `chat`"),
        (
            '[[route]]\nchat = -100123\ncategories = "uav"\n',
            "alerts.toml: route[0].categories: expected a list of strings, e.g. [\"evacuation\"] (got 'uav')",
        ),
        ('cooldwn = "1m"\n', "alerts.toml: cooldwn: unknown key"),
        ("cooldown = \n", "alerts.toml: invalid TOML: Invalid value (at line 1, column 12)"),
    ],
    ids=["bad-duration", "negative-window", "chat-and-destination", "neither", "string-not-list", "typo", "syntax"],
)
def test_a_bad_alerts_toml_is_one_line_and_exit_2(config: Path, toml: str, fragment: str) -> None:
    (config / "alerts.toml").write_text(toml, encoding="utf-8")
    result = tgmon("check-config", "--config-dir", str(config), "--rules", RULES)
    lines = assert_user_error(result, fragment)
    assert len(lines) == 1
    assert str(config / "alerts.toml") in lines[0]
    assert result.stdout == ""


def test_every_alerts_toml_problem_is_reported_at_once(config: Path) -> None:
    (config / "alerts.toml").write_text(
        'cooldown = "soon"\ndedup_window = "later"\n[[route]]\ncategories = ["uav"]\n', encoding="utf-8"
    )
    result = tgmon("check-config", "--config-dir", str(config), "--rules", RULES)
    lines = assert_user_error(result, "cooldown: expected", "dedup_window: expected", "route[0]: give `chat`")
    assert len(lines) == 3


def test_a_route_to_no_configured_destination_is_an_error(config: Path) -> None:
    (config / "alerts.toml").write_text(
        '[[route]]\nchat = -1005555555555\ncategories = ["missile"]\n\n[[route]]\ndestination = "jsonl"\n',
        encoding="utf-8",
    )
    code, _, stderr = check(config, {"TGMON_NOTIFIERS": "jsonl", "ANALYST_CHAT_ID": "-1001234567890"})
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "alerts.toml: route[0]: telegram:-1005555555555 is not a destination" in lines[0]
    assert "configured: jsonl, telegram:-1001234567890" in lines[0]


def test_a_route_to_a_place_the_gazetteer_lacks_is_an_error(config: Path) -> None:
    (config / "alerts.toml").write_text(
        '[[route]]\ndestination = "jsonl"\nplaces = ["Курская область", "Кивщина"]\n', encoding="utf-8"
    )
    code, _, stderr = check(config, {"TGMON_NOTIFIERS": "jsonl"})
    assert code == 2
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "alerts.toml: route[0].places[1]: no place named 'Кивщина'" in line
