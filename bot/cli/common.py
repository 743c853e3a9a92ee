"""What every command shares: the app, consoles, options, settings and error handling, the store.

Bad input of any kind ends with one line per problem on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from bot.alerts.notifiers import ConsoleNotifier, JsonlNotifier, Notifier
from bot.alerts.outbox import Dispatcher
from bot.alerts.policy import AlertPolicy, AlertsConfig, load_alerts_config
from bot.errors import ConfigError, UserError
from bot.logging import configure as configure_logging
from bot.logging import get_logger, register_secrets
from bot.rules.engine import Engine
from bot.rules.loader import load_rules
from bot.rules.remote import RulesProcess
from bot.settings import Channels, Settings, load_settings
from bot.store import Store
from bot.store.sqlite import SQLiteStore, open_store

T = TypeVar("T")
Matcher = Engine | RulesProcess
log = get_logger("tgmon.cli")
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    name="tgmon",
    help="Archive public Telegram channels and alert analysts when posts talk about danger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (database, session, alerts). Env: TGMON_DATA_DIR."),
]
ConfigDir = Annotated[
    Path | None,
    typer.Option("--config-dir", help="Folder of channels.toml and rules.toml. Env: TGMON_CONFIG_DIR."),
]
EnvFile = Annotated[Path | None, typer.Option("--env-file", help="Secrets file to read (default: ./.env).")]
RulesOpt = Annotated[Path | None, typer.Option("--rules", help="Rules file (default: <config-dir>/rules.toml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]


def settings_from(data_dir: Path | None, config_dir: Path | None, env_file: Path | None) -> Settings:
    settings = load_settings(env_file=env_file, data_dir=data_dir, config_dir=config_dir)
    register_secrets(settings.env.secrets())
    configure_logging(settings.env.log_level, settings.env.log_format)
    return settings


def fail(error: UserError) -> typer.Exit:
    for line in error.lines:
        err.print(f"error: {line}", markup=False)
    return typer.Exit(error.exit_code)


def guard(fn: Callable[[], T]) -> T:
    """Run a command body: user errors become one line each on stderr and exit code 2."""
    try:
        return fn()
    except UserError as exc:
        raise fail(exc) from None


def run_async(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return guard(lambda: asyncio.run(main()))


def packaged(name: str) -> Path:
    return Path(str(resources.files("bot") / name))


def rules_path(settings: Settings, override: Path | None) -> Path:
    """`--rules`, else config/rules.toml, else the pack shipped with tgmon."""
    path = override or settings.rules_path
    if override is None and not path.exists():
        path = packaged("rules/default.toml")
        log.info("rules.default_pack", path=str(path), hint=f"create {settings.rules_path} to customise")
    return path


def rules_engine(settings: Settings, override: Path | None) -> Engine:
    return load_rules(rules_path(settings, override))


@contextlib.asynccontextmanager
async def rules_matcher(settings: Settings, override: Path | None, channels: Channels) -> AsyncIterator[Matcher]:
    """The rules for a long run: in a rules process of their own on a machine with a second core
    (`bot.rules.remote`: matching then overlaps reading and storing), else in this process."""
    if (os.cpu_count() or 1) < 2:
        yield rules_engine(settings, override)
        return
    env = settings.env
    process = RulesProcess(rules_path(settings, override), channels, env.log_level, env.log_format)
    try:
        try:
            await process.start()
        except (OSError, BrokenProcessPool) as exc:  # no semaphores or no fork here: match in process
            log.warning("rules.process_unavailable", error=f"{type(exc).__name__}: {exc}", fallback="in process")
            yield rules_engine(settings, override)
            return
        yield process
    finally:
        process.close()


def destination_names(settings: Settings) -> list[str]:
    """Every destination's name, as deliveries, routes and `tgmon stats` know it, without making any."""
    env = settings.env
    names = [*env.notifier_names]
    if env.webhook_urls:
        from bot.alerts.webhook import webhook_name

        names += [webhook_name(url) for url in env.webhook_urls]
    if env.apprise_urls:
        from bot.alerts.apprise import apprise_name

        names += [apprise_name(url) for url in env.apprise_urls]
    return names + [f"telegram:{chat}" for chat in env.analyst_chats]


def notifiers_for(settings: Settings, data_dir: Path, console: Console | None = None) -> list[Notifier]:
    """TGMON_NOTIFIERS, then one webhook per ALERT_WEBHOOK_URL entry, then one per ALERT_APPRISE_URLS entry."""
    made: list[Notifier] = []
    for name in settings.env.notifier_names:
        if name == "console":
            made.append(ConsoleNotifier(console, settings.env.tz))
        elif name == "jsonl":
            made.append(JsonlNotifier(data_dir / "alerts.jsonl"))
    if settings.env.webhook_urls:
        from bot.alerts.webhook import WebhookNotifier  # httpx is loaded only when webhooks are used

        timeout = settings.env.alert_webhook_timeout
        made += [WebhookNotifier(url, timeout=timeout) for url in settings.env.webhook_urls]
    if settings.env.apprise_urls:
        from bot.alerts.apprise import apprise_notifiers

        made += apprise_notifiers(settings.env.apprise_urls)
    seen: set[str] = set()
    for notifier in made:
        if notifier.name in seen:  # two URLs that differ only in scheme would share their delivery rows
            raise ConfigError(f"ALERT_WEBHOOK_URL: two entries are the same destination ({notifier.name})")
        seen.add(notifier.name)
    return made


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM stop the pipeline gracefully; a second SIGINT is the usual hard interrupt."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):

            def handler(sig: signal.Signals = sig) -> None:
                log.info("signal.received", signal=sig.name)
                on_signal()
                loop.remove_signal_handler(sig)

            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def opened_store(data_dir: Path, create: bool) -> AsyncIterator[SQLiteStore]:
    store = await open_store(data_dir, create=create)
    try:
        yield store
    finally:
        await store.close()


def progress_bar(enabled: bool) -> Progress | None:
    if not enabled or not err.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@dataclass(slots=True)
class Alerting:
    """Where alerts go and under which policy, and the Telegram client that sends to analyst chats."""

    notifiers: list[Notifier]
    policy_config: AlertsConfig
    client: Any = None

    def dispatcher(self, store: Store, settings: Settings) -> Dispatcher:
        return Dispatcher(store, self.notifiers, digest_after=settings.env.digest_after)

    def policy(self, channels: Channels) -> AlertPolicy:
        return self.policy_config.policy([n.name for n in self.notifiers], channels.tags_of)


@contextlib.asynccontextmanager
async def alerting(
    settings: Settings, data_dir: Path, *, user_client: Any = None, console: Console | None = None
) -> AsyncIterator[Alerting]:
    """Every destination (TGMON_NOTIFIERS, webhooks, Apprise, the analyst chats) and config/alerts.toml.

    Analyst chats are written to by the alert bot when TG_BOT_TOKEN is set, else by the account
    itself: the service's own client, or one connected here (for `tgmon replay`).
    """
    config = load_alerts_config(settings.alerts_config_path)
    config.check(destination_names(settings))
    notifiers = notifiers_for(settings, data_dir, console)
    chats = settings.env.analyst_chats
    client, owned = user_client, False
    if chats:  # Telethon costs 0.2 s of every start: loaded only when an analyst chat needs it
        from bot.alerts.telegram import TelegramNotifier
        from bot.sources.session import connect_authorized, connect_bot

        if settings.env.bot_token is not None:
            client, owned = await connect_bot(settings), True
        elif client is None:
            client, owned = await connect_authorized(settings), True
        notifiers += [TelegramNotifier(client, chat, settings.env.tz) for chat in chats]
    try:
        yield Alerting(notifiers, config, client)
    finally:
        if owned:
            await client.disconnect()
