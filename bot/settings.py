"""Settings: secrets and paths from the environment (and `.env`), channels from `config/channels.toml`.

Everything is validated before anything starts, and every problem becomes one line naming the file or
variable, the key and what was expected, so the operator can fix all of them in one pass.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

NOTIFIER_NAMES = ("console", "jsonl")
_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_LINK_RE = re.compile(r"^(?:https?://)?(?:t\.me|telegram\.me)/(?:s/)?([A-Za-z0-9_]+)/?$")


class EnvSettings(BaseSettings):
    """Process settings. Names are the environment variables documented in `.env.example`."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, validate_default=True)

    data_dir: Path = Field(Path("data"), alias="TGMON_DATA_DIR")
    config_dir: Path = Field(Path("config"), alias="TGMON_CONFIG_DIR")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", alias="TGMON_LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field("auto", alias="TGMON_LOG_FORMAT")
    timezone: str = Field("UTC", alias="TGMON_TIMEZONE")
    notifiers: str = Field("console,jsonl", alias="TGMON_NOTIFIERS")
    api_id: int | None = Field(None, alias="TG_API_ID")
    api_hash: SecretStr | None = Field(None, alias="TG_API_HASH")
    session: SecretStr | None = Field(None, alias="TG_SESSION")
    bot_token: SecretStr | None = Field(None, alias="TG_BOT_TOKEN")
    analyst_chat_id: str = Field("", alias="ANALYST_CHAT_ID")
    analyst_user_ids: str = Field("", alias="ANALYST_USER_IDS")
    poll_interval: float = Field(90.0, ge=10, le=3600, alias="TG_POLL_INTERVAL")
    initial_backfill: int = Field(100, ge=-1, alias="TG_INITIAL_BACKFILL")
    media_max_mb: float = Field(50.0, gt=0, alias="TG_MEDIA_MAX_MB")
    digest_after: float = Field(900.0, ge=0, alias="TGMON_DIGEST_AFTER")
    dc_id: int | None = Field(None, ge=1, le=5, alias="TG_DC_ID")
    dc_address: str | None = Field(None, alias="TG_DC_ADDRESS")
    dc_port: int = Field(443, ge=1, le=65535, alias="TG_DC_PORT")
    media_retention_days: int | None = Field(None, ge=1, alias="TGMON_MEDIA_RETENTION_DAYS")
    metrics_port: int | None = Field(None, ge=1, le=65535, alias="TGMON_METRICS_PORT")
    metrics_address: str = Field("127.0.0.1", alias="TGMON_METRICS_ADDRESS")
    # Alert destinations beyond TGMON_NOTIFIERS (bot/alerts/webhook.py, bot/alerts/apprise.py); the URLs are secrets.
    # The timeout stays within the dispatcher's own 30 s cap on one send.
    alert_webhook_url: str = Field("", alias="ALERT_WEBHOOK_URL")
    alert_webhook_timeout: float = Field(10.0, gt=0, le=30, alias="ALERT_WEBHOOK_TIMEOUT")
    alert_apprise_urls: str = Field("", alias="ALERT_APPRISE_URLS")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Europe/Kyiv or UTC") from None
        return value

    @field_validator("notifiers")
    @classmethod
    def _known_notifiers(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in NOTIFIER_NAMES]
        if unknown:
            raise ValueError(f"a comma-separated list of {', '.join(NOTIFIER_NAMES)}")
        return ",".join(names)

    @field_validator("analyst_chat_id", "analyst_user_ids")
    @classmethod
    def _id_list(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if not item.lstrip("-").isdigit():
                raise ValueError(f"numeric ids, comma-separated (got {item!r})")
        return ",".join(items)

    @field_validator(
        "api_id",
        "api_hash",
        "session",
        "bot_token",
        "dc_id",
        "dc_address",
        "metrics_port",
        "media_retention_days",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`TG_SESSION=` in .env, as .env.example ships it, means "not set", not an empty secret."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_urls(cls, value: str) -> str:
        from bot.alerts.webhook import check_url  # httpx is loaded only when webhooks are used

        urls = _url_list(value)
        for index, url in enumerate(urls, 1):
            problem = check_url(url)
            if problem is not None:
                raise ValueError(f"http(s) URLs, comma-separated; entry {index} of {len(urls)} {problem}")
            if url in urls[: index - 1]:
                raise ValueError(f"distinct URLs; entry {index} repeats entry {urls.index(url) + 1}")
        return ",".join(urls)

    @field_validator("alert_apprise_urls")
    @classmethod
    def _apprise_urls(cls, value: str) -> str:
        urls = _url_list(value)
        for index, url in enumerate(urls, 1):
            if "://" not in url:
                raise ValueError(f"Apprise URLs (scheme://…), comma-separated; entry {index} of {len(urls)} has no ://")
            if url in urls[: index - 1]:
                raise ValueError(f"distinct URLs; entry {index} repeats entry {urls.index(url) + 1}")
        if urls:
            from bot.alerts.apprise import INSTALL_HINT, installed

            if not installed():
                raise ValueError(f"the Apprise package, which is not installed: {INSTALL_HINT}")
        return ",".join(urls)

    @model_validator(mode="after")
    def _dc_complete(self) -> EnvSettings:
        if (self.dc_id is None) != (self.dc_address is None):
            raise ValueError("TG_DC_ID and TG_DC_ADDRESS go together (a test server needs both)")
        return self

    @property
    def notifier_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.notifiers.split(",") if n)

    @property
    def analyst_chats(self) -> tuple[int, ...]:
        return tuple(int(item) for item in self.analyst_chat_id.split(",") if item)

    @property
    def analysts(self) -> frozenset[int]:
        """User ids allowed to command the service from the analyst chat (default: nobody)."""
        return frozenset(int(item) for item in self.analyst_user_ids.split(",") if item)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        return _url_list(self.alert_webhook_url)

    @property
    def apprise_urls(self) -> tuple[str, ...]:
        return _url_list(self.alert_apprise_urls)

    def secrets(self) -> list[str]:
        """Values that must never reach a log line."""
        found = [s.get_secret_value() for s in (self.api_hash, self.session, self.bot_token) if s is not None]
        if self.webhook_urls or self.apprise_urls:
            from bot.alerts.apprise import apprise_name
            from bot.alerts.webhook import url_secrets, webhook_name

            for url in self.webhook_urls:
                found += url_secrets(url, webhook_name(url))
            for url in self.apprise_urls:
                found += url_secrets(url, apprise_name(url))
        return found


def _url_list(value: str) -> tuple[str, ...]:
    """`ALERT_WEBHOOK_URL` and `ALERT_APPRISE_URLS`: comma-separated, blanks ignored."""
    return tuple(u.strip() for u in value.split(",") if u.strip())


class ChannelConfig(BaseModel):
    """One monitored channel: by numeric id, by @username or t.me link, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int | None = Field(None, gt=0, le=2**63 - 1)  # SQLite's INTEGER; Telegram's are far below
    username: str | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()
    join: bool = True  # live updates need membership; without it the channel is read by polling
    download_media: bool = False  # files to <data dir>/media, up to TG_MEDIA_MAX_MB each
    region: tuple[str, ...] = ()  # places the channel is about: a name several places share means the one here

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        names = (value,) if isinstance(value, str) else value
        if isinstance(names, list | tuple):
            from bot.places.gazetteer import load_gazetteer  # loaded only when a channel names a region

            gazetteer = load_gazetteer()
            for name in names:
                if isinstance(name, str) and not gazetteer.find(name):
                    raise ValueError(
                        f"no place named {name!r}: write it as in Ukrainian or Russian, e.g. "
                        '"Київська область", "Белгородская область", "Бровари"'
                    )
        return names

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else parse_username(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError('a list of tag strings, e.g. tags = ["governors"]')
        return value

    @model_validator(mode="after")
    def _identified(self) -> ChannelConfig:
        if self.id is None and self.username is None:
            raise ValueError("needs `id` (numeric) or `username` (@name or t.me link)")
        return self


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: list[ChannelConfig] = []


@dataclass(frozen=True, slots=True)
class Channels:
    """Configured channels, indexed the ways sources and rules ask for them."""

    items: tuple[ChannelConfig, ...] = ()
    _by_id: Mapping[int, ChannelConfig] = field(default_factory=dict, repr=False)
    _by_username: Mapping[str, ChannelConfig] = field(default_factory=dict, repr=False)
    _homes: dict[tuple[str, ...], tuple[int, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, items: Iterable[ChannelConfig]) -> Channels:
        items = tuple(items)
        return cls(
            items,
            {c.id: c for c in items if c.id is not None},
            {c.username.lower(): c for c in items if c.username},
        )

    def lookup(self, channel_id: int, username: str | None = None) -> ChannelConfig | None:
        found = self._by_id.get(channel_id)
        if found is None and username:
            found = self._by_username.get(username.lower())
        return found

    def tags_of(self, channel_id: int, username: str | None = None) -> tuple[str, ...]:
        found = self.lookup(channel_id, username)
        return found.tags if found else ()

    def homes_of(self, channel_id: int, username: str | None = None) -> tuple[int, ...]:
        """Gazetteer ids of the channel's `region`: where a place name is ambiguous, the one there wins."""
        found = self.lookup(channel_id, username)
        if found is None or not found.region:
            return ()
        homes = self._homes.get(found.region)
        if homes is None:
            from bot.places.gazetteer import load_gazetteer

            gazetteer = load_gazetteer()
            homes = tuple(places[0].id for name in found.region if (places := gazetteer.find(name)))
            self._homes[found.region] = homes
        return homes


@dataclass(frozen=True, slots=True)
class Settings:
    env: EnvSettings
    channels: Channels

    @property
    def data_dir(self) -> Path:
        return self.env.data_dir

    @property
    def db_path(self) -> Path:
        return self.env.data_dir / "tgmon.db"

    @property
    def alerts_path(self) -> Path:
        return self.env.data_dir / "alerts.jsonl"

    @property
    def rules_path(self) -> Path:
        return self.env.config_dir / "rules.toml"

    @property
    def channels_path(self) -> Path:
        return self.env.config_dir / "channels.toml"

    @property
    def alerts_config_path(self) -> Path:
        """Routing, cooldown and duplicate window (optional)."""
        return self.env.config_dir / "alerts.toml"


def parse_username(value: str) -> str:
    """`@name`, `name` or a t.me link, to a bare username; raises ValueError with the expected form."""
    text = value.strip()
    link = _LINK_RE.match(text)
    name = link.group(1) if link else text.removeprefix("@")
    if not _USERNAME_RE.match(name):
        raise ValueError("a channel @username or t.me link (5-32 letters, digits or _)")
    return name


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "literal_error": "one of the allowed values",
}
# Bounds said with their value where pydantic gives it: "a number of at least 0".
_BOUNDS = {
    "greater_than": "a number above",
    "greater_than_equal": "a number of at least",
    "less_than": "a number below",
    "less_than_equal": "a number of at most",
}


def describe_problem(item: Mapping[str, Any]) -> str:
    """Pydantic's error item as `expected X (got Y)` or its own sentence."""
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the commented example in config/)"
    if kind == "missing":
        return "required key is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    bounds = item.get("ctx") or {}
    if kind == "literal_error":
        expected = message.removeprefix("Input should be ")
    elif kind == "greater_than" and bounds.get("gt") == 0:
        expected = "a positive number"
    elif kind in _BOUNDS and len(bounds) == 1:
        bound = next(iter(bounds.values()))
        shown_bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        expected = f"{_BOUNDS[kind]} {shown_bound}"
    elif kind in _EXPECTED:
        expected = _EXPECTED[kind]
    elif kind == "value_error":
        expected = message
    else:
        return message
    got = item.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    return f"expected {expected}{shown}"


def format_validation_error(where: str, error: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem: `where: key: expected ...`."""
    lines = []
    for item in error.errors():
        loc = prefix + _format_loc(item["loc"])
        message = describe_problem(item)
        lines.append(f"{where}: {loc}: {message}" if loc else f"{where}: {message}")
    return lines


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        key = str(part) if str(part).isprintable() else json.dumps(str(part), ensure_ascii=False)  # "\n": one line
        out += f"[{part}]" if isinstance(part, int) else (f".{key}" if out else key)
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (copy the example from the repository's config/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib decodes the whole file first, outside its own errors
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load_channels(path: Path) -> Channels:
    if not path.exists():
        return Channels.of(())
    raw = read_toml(path)
    try:
        parsed = ChannelsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(*format_validation_error(str(path), exc)) from None
    seen: dict[str, int] = {}
    problems = []
    for index, channel in enumerate(parsed.channel):
        for key in (
            f"id {channel.id}" if channel.id else None,
            f"@{channel.username}" if channel.username else None,
        ):
            if key is None:
                continue
            if key.lower() in seen:  # usernames are case-insensitive on Telegram
                problems.append(f"{path}: channel[{index}]: {key} is listed twice (also channel[{seen[key.lower()]}])")
            seen[key.lower()] = index
    if problems:
        raise ConfigError(*problems)
    return Channels.of(parsed.channel)


def load_env(env_file: Path | None = None) -> EnvSettings:
    """Read `.env` (without overriding the real environment) and validate every variable."""
    if env_file is not None:
        if not env_file.exists():
            raise ConfigError(f"{env_file}: env file not found")
        load_dotenv(env_file, override=False)
    elif Path(".env").exists():
        load_dotenv(Path(".env"), override=False)
    try:
        return EnvSettings()
    except ValidationError as exc:
        lines = []
        for item in exc.errors():
            if not item["loc"]:  # a rule across variables
                lines.append(f"environment (.env): {str(item['msg']).removeprefix('Value error, ')}")
                continue
            name = str(item["loc"][0])
            secret = name in ("TG_API_HASH", "TG_SESSION", "TG_BOT_TOKEN", "ALERT_WEBHOOK_URL", "ALERT_APPRISE_URLS")
            problem = describe_problem({**item, "input": None} if secret else item)
            lines.append(f"environment (.env): {name}: {problem}")
        raise ConfigError(*lines) from None


def load_settings(
    env_file: Path | None = None,
    data_dir: Path | None = None,
    config_dir: Path | None = None,
) -> Settings:
    env = load_env(env_file)
    updates: dict[str, Path] = {}
    if data_dir is not None:
        updates["data_dir"] = data_dir
    if config_dir is not None:
        updates["config_dir"] = config_dir
    if updates:
        env = env.model_copy(update=updates)
    if env.config_dir.exists() and not env.config_dir.is_dir():
        raise ConfigError(f"{env.config_dir}: TGMON_CONFIG_DIR is not a directory")
    return Settings(env=env, channels=load_channels(env.config_dir / "channels.toml"))
