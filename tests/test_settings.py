"""Settings: .env / environment variables and config/channels.toml, validated up front, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Channels, load_channels, load_env, load_settings, parse_username


def write_channels(config_dir: Path, body: str) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "channels.toml"
    path.write_text(body, encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    lines = list(exc.value.lines)
    assert all("\n" not in line for line in lines)
    return lines


# --- channels.toml ------------------------------------------------------------------------------


def test_valid_channels_file(tmp_path: Path) -> None:
    path = write_channels(
        tmp_path,
        """
[[channel]]
username = "@air_alert_ua"
title = "Повітряна Тривога"
tags = ["official", "monitors"]

[[channel]]
id = 1234567890
tags = ["militias"]
""",
    )
    channels = load_channels(path)
    assert len(channels.items) == 2
    assert channels.lookup(999, "AIR_ALERT_UA") is not None
    assert channels.tags_of(999, "air_alert_ua") == ("official", "monitors")
    assert channels.tags_of(1234567890) == ("militias",)
    assert channels.tags_of(42, "someone_else") == ()


def test_missing_channels_file_means_no_channels(tmp_path: Path) -> None:
    assert load_channels(tmp_path / "nope.toml").items == ()


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[channel]]\nusername = "@abcdef"\ncolour = "red"\n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: channel[0].colour: ")
    assert "unknown key" in line


def test_unknown_top_level_table(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[chanel]]\nusername = "@abcdef"\n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: chanel: unknown key")


def test_bad_types_one_line_each(tmp_path: Path) -> None:
    path = write_channels(
        tmp_path,
        """
[[channel]]
id = "abc"

[[channel]]
username = "@abcdef"
tags = "governors"

[[channel]]
id = -5
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    lines = problems(exc)
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}: channel[0].id: expected an integer")
    assert "'abc'" in lines[0]
    assert lines[1].startswith(f"{path}: channel[1].tags: expected a list")
    assert lines[2].startswith(f"{path}: channel[2].id: expected a positive number")


def test_channel_id_beyond_64_bits(tmp_path: Path) -> None:
    path = write_channels(tmp_path, "[[channel]]\nid = 99999999999999999999\n")
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    assert problems(exc) == [
        f"{path}: channel[0].id: expected a number of at most 9223372036854775807 (got 99999999999999999999)"
    ]


def test_channel_without_id_or_username(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[channel]]\ntitle = "No way to find me"\n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: channel[0]: ")
    assert "id" in line
    assert "username" in line


def test_bad_username(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[channel]]\nusername = "ab"\n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: channel[0].username: expected ")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('username = "@abcdef"', 'username = "https://t.me/abcdef"'),
        ('username = "abcdef"', 'username = "@abcdef"'),
        ("id = 1234567", "id = 1234567"),
    ],
)
def test_duplicate_channel_is_an_error(tmp_path: Path, first: str, second: str) -> None:
    path = write_channels(tmp_path, f"[[channel]]\n{first}\n\n[[channel]]\n{second}\n")
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: channel[1]: ")
    assert "listed twice" in line
    assert "channel[0]" in line


def test_duplicate_channel_differing_in_case_is_an_error(tmp_path: Path) -> None:
    path = write_channels(
        tmp_path, '[[channel]]\nusername = "@Air_Alert_UA"\n\n[[channel]]\nusername = "air_alert_ua"\n'
    )
    with pytest.raises(ConfigError):
        load_channels(path)


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[channel]]\nusername = "@abcdef"\ntags = ["a",\n\n[[channel]]\nid = 5\n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: invalid TOML")
    assert "line 5" in line


def test_invalid_toml_reports_the_right_line(tmp_path: Path) -> None:
    path = write_channels(tmp_path, '[[channel]]\nusername = "@abcdef"\ntitle = \n')
    with pytest.raises(ConfigError) as exc:
        load_channels(path)
    assert "line 3" in problems(exc)[0]


@pytest.mark.parametrize(
    "given",
    ["@air_alert_ua", "air_alert_ua", "https://t.me/air_alert_ua", "t.me/air_alert_ua", "https://t.me/s/air_alert_ua/"],
)
def test_username_forms(given: str) -> None:
    assert parse_username(given) == "air_alert_ua"


@pytest.mark.parametrize("given", ["ab", "@", "https://example.com/air_alert_ua", "air alert", "1abcdef"])
def test_bad_username_forms(given: str) -> None:
    with pytest.raises(ValueError, match="username"):
        parse_username(given)


def test_usernames_in_all_forms_in_channels_file(tmp_path: Path) -> None:
    path = write_channels(
        tmp_path,
        """
[[channel]]
username = "@first_chan"
[[channel]]
username = "second_chan"
[[channel]]
username = "https://t.me/third_chan"
""",
    )
    assert [c.username for c in load_channels(path).items] == ["first_chan", "second_chan", "third_chan"]


def test_channels_of_indexes() -> None:
    assert Channels.of(()).lookup(1) is None


# --- environment ----------------------------------------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == Path("data")
    assert settings.db_path == Path("data") / "tgmon.db"
    assert settings.alerts_path == Path("data") / "alerts.jsonl"
    assert settings.rules_path == Path("config") / "rules.toml"
    assert settings.env.notifier_names == ("console", "jsonl")
    assert settings.env.timezone == "UTC"
    assert settings.channels.items == ()


def test_bad_timezone_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGMON_TIMEZONE", "Mars/Base")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    (line,) = problems(exc)
    assert line.startswith("environment (.env): TGMON_TIMEZONE: expected ")
    assert "Mars/Base" in line


def test_unknown_notifier_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGMON_NOTIFIERS", "pigeon")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    (line,) = problems(exc)
    assert line.startswith("environment (.env): TGMON_NOTIFIERS: expected ")
    assert "console" in line
    assert "jsonl" in line


def test_every_env_problem_reported_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGMON_TIMEZONE", "Mars/Base")
    monkeypatch.setenv("TGMON_NOTIFIERS", "pigeon")
    monkeypatch.setenv("TG_API_ID", "not-a-number")
    with pytest.raises(ConfigError) as exc:
        load_env()
    names = sorted(line.split(": ")[1] for line in problems(exc))
    assert names == ["TGMON_NOTIFIERS", "TGMON_TIMEZONE", "TG_API_ID"]


def test_notifiers_parsed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGMON_NOTIFIERS", " jsonl , ")
    assert load_env().notifier_names == ("jsonl",)
    monkeypatch.setenv("TGMON_NOTIFIERS", "")
    assert load_env().notifier_names == ()


def undo_dotenv(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """load_dotenv writes os.environ directly: register the names so monkeypatch removes them afterwards."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_secret_never_in_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TG_API_HASH", secret)
    monkeypatch.setenv("TG_SESSION", secret + "session")
    monkeypatch.setenv("TG_API_ID", "not-a-number")
    monkeypatch.setenv("TGMON_TIMEZONE", "Mars/Base")
    with pytest.raises(ConfigError) as exc:
        load_env()
    assert len(problems(exc)) == 2
    assert secret not in str(exc.value)
    monkeypatch.delenv("TG_API_ID")
    monkeypatch.delenv("TGMON_TIMEZONE")
    env = load_env()
    assert secret not in repr(env)
    assert secret not in str(env.model_dump())
    assert env.secrets() == [secret, secret + "session"]


def test_secret_from_env_file_not_in_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = "fedcba9876543210fedcba9876543210"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"TG_API_HASH={secret}\nTG_API_ID=twelve\n", encoding="utf-8")
    undo_dotenv(monkeypatch, "TG_API_HASH", "TG_API_ID")
    with pytest.raises(ConfigError) as exc:
        load_env()
    (line,) = problems(exc)
    assert line.startswith("environment (.env): TG_API_ID: expected an integer")
    assert secret not in str(exc.value)


def test_dotenv_read_but_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TGMON_TIMEZONE=Europe/Kyiv\nTGMON_NOTIFIERS=jsonl\n", encoding="utf-8")
    undo_dotenv(monkeypatch, "TGMON_TIMEZONE", "TGMON_NOTIFIERS")
    monkeypatch.setenv("TGMON_NOTIFIERS", "console")
    env = load_env()
    assert env.timezone == "Europe/Kyiv"
    assert env.notifier_names == ("console",)


def test_explicit_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("TGMON_LOG_LEVEL=WARNING\n", encoding="utf-8")
    undo_dotenv(monkeypatch, "TGMON_LOG_LEVEL")
    assert load_env(env_file).log_level == "warning"


def test_missing_env_file_given_explicitly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_env(tmp_path / "missing.env")
    assert "env file not found" in problems(exc)[0]


def test_data_dir_override_wins_over_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGMON_DATA_DIR", str(tmp_path / "from-env"))
    assert load_settings().data_dir == tmp_path / "from-env"
    settings = load_settings(data_dir=tmp_path / "from-flag")
    assert settings.data_dir == tmp_path / "from-flag"
    assert settings.db_path == tmp_path / "from-flag" / "tgmon.db"


def test_config_dir_override_reads_its_channels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    write_channels(tmp_path / "env-config", '[[channel]]\nusername = "@from_env"\n')
    write_channels(tmp_path / "flag-config", '[[channel]]\nusername = "@from_flag"\n')
    monkeypatch.setenv("TGMON_CONFIG_DIR", str(tmp_path / "env-config"))
    assert [c.username for c in load_settings().channels.items] == ["from_env"]
    settings = load_settings(config_dir=tmp_path / "flag-config")
    assert [c.username for c in settings.channels.items] == ["from_flag"]


def test_config_dir_that_is_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a directory"):
        load_settings(config_dir=tmp_path / "cfg")


def test_bad_channels_reported_through_load_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    write_channels(tmp_path / "config", '[[channel]]\nusername = "@abcdef"\nweight = 3\n')
    with pytest.raises(ConfigError) as exc:
        load_settings()
    (line,) = problems(exc)
    assert line.startswith(f"{Path('config') / 'channels.toml'}: channel[0].weight: unknown key")
