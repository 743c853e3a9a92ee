"""The service and its account: `tgmon run`, `tgmon login`, `tgmon check-config`.

Telethon and what builds on it are imported inside the commands that talk to Telegram: importing it
costs 0.2 s, which `tgmon replay`, `stats` or `search` (this module loads with every command) would
pay for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.alerts.policy import load_alerts_config
from bot.cli.common import (
    ConfigDir,
    DataDir,
    EnvFile,
    RulesOpt,
    alerting,
    app,
    destination_names,
    err,
    guard,
    log,
    opened_store,
    out,
    progress_bar,
    rules_engine,
    run_async,
    settings_from,
    stop_on_signals,
)
from bot.errors import StoreError, UserError
from bot.health import MAX_AGE_S, Heartbeat, check, heartbeat_path
from bot.pipeline import Pipeline
from bot.rules.engine import Engine
from bot.rules.loader import RulesReloader
from bot.settings import Settings
from bot.store import Store
from bot.store.retention import prune_media

UPKEEP_EVERY_S = 6 * 3600.0


@app.command()
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Store and match, but send no alert to any notifier.")
    ] = False,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Also append every raw Telegram update to FILE (replay it with tgmon replay)."),
    ] = None,
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """The service: follow the configured channels live, archive every post, raise alerts."""

    async def body() -> None:
        from bot.sources.session import connect_authorized, exclusive

        settings = settings_from(data_dir, config_dir, env_file)
        engine = rules_engine(settings, rules)
        with exclusive(settings):
            client = await connect_authorized(settings)
            try:
                await _serve(settings, engine, client, dry_run=dry_run, record=record)
            finally:
                await client.disconnect()

    run_async(body)


async def _upkeep(store: Store, data_dir: Path, retention_days: int | None) -> None:
    """Every few hours: the database's statistics refreshed, old media files deleted if asked."""
    while True:
        try:
            if retention_days is not None:
                await prune_media(store, data_dir, timedelta(days=retention_days))
            await store.optimize()
        except StoreError as exc:
            log.warning("store.upkeep_failed", error=str(exc), retry_in_s=UPKEEP_EVERY_S)
        await asyncio.sleep(UPKEEP_EVERY_S)


async def _serve(settings: Settings, engine: Engine, client: Any, *, dry_run: bool, record: Path | None) -> None:
    from bot.alerts.commands import CommandHandler
    from bot.alerts.telegram import CommandListener
    from bot.sources.media import MediaDownloader
    from bot.sources.recording import Recorder
    from bot.sources.telegram import TelegramSource
    from bot.status import LiveView, snapshot

    env = settings.env
    async with (
        opened_store(settings.data_dir, create=True) as store,
        alerting(settings, settings.data_dir, user_client=client) as alerts,
    ):
        if dry_run:
            alerts.notifiers.clear()
        notifiers = alerts.notifiers
        pipeline = Pipeline(
            store,
            engine,
            alerts.dispatcher(store, settings),
            settings.channels,
            policy=alerts.policy(settings.channels),
        )
        reloader = RulesReloader(Path(engine.source), lambda new: setattr(pipeline, "engine", new))
        wants_media = any(c.download_media for c in settings.channels.items)
        media = (
            MediaDownloader(client, settings.data_dir, int(env.media_max_mb * 1024 * 1024), store.write)
            if wants_media
            else None
        )
        recorder = Recorder(record) if record is not None else None
        progress = progress_bar(True)
        task = progress.add_task("catching up", total=None) if progress is not None else None

        def on_progress(done: int, total: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total)
                if done >= total:
                    progress.stop()

        source = TelegramSource(
            client,
            settings.channels,
            store,
            poll_interval=env.poll_interval,
            initial_backfill=env.initial_backfill,
            media=media,
            recorder=recorder,
            on_progress=on_progress,
        )
        log.info(
            "service.started",
            channels=len(settings.channels.items),
            rules=len(engine.rules),
            notifiers=[n.name for n in notifiers],
            dry_run=dry_run,
            record=str(record) if record else None,
        )
        commands = None
        if alerts.client is not None and env.analyst_chats:
            view = LiveView(store, pipeline, settings.channels, source)
            me = await alerts.client.get_me()
            handler = CommandHandler(view, env.analysts, env.tz)
            commands = CommandListener(alerts.client, env.analyst_chats, handler, getattr(me, "username", None))
            commands.start()
        listeners = []
        if env.metrics_port is not None:
            from bot.metrics import SnapshotCollector, serve

            collector = SnapshotCollector()
            serve(collector, env.metrics_address, env.metrics_port)
            listeners.append(collector.update)
        heartbeat = Heartbeat(
            lambda: snapshot(pipeline, store, source, bool(client.is_connected())),
            heartbeat_path(settings.data_dir),
            listeners=tuple(listeners),
        )
        beating = asyncio.create_task(heartbeat.run(), name="heartbeat")
        upkeep = asyncio.create_task(_upkeep(store, settings.data_dir, env.media_retention_days), name="store-upkeep")
        watcher = asyncio.create_task(reloader.watch(), name="rules-watch")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reloader.reload("SIGHUP")))
        try:
            with stop_on_signals(pipeline.stop), progress or contextlib.nullcontext():
                stats = await pipeline.run(source, drain=False)
        finally:
            watcher.cancel()
            beating.cancel()
            upkeep.cancel()
            heartbeat.stopped()
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGHUP)
            if recorder is not None:
                recorder.close()
            if commands is not None:
                commands.stop()
        log.info("service.stopped", events=stats.events, alerts=stats.alerts.total(), flood_waits=source.flood.waits)


@app.command()
def health(
    max_age: Annotated[
        float, typer.Option("--max-age", min=1, help="Seconds after which the heartbeat is stale.")
    ] = MAX_AGE_S,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Exit 0 if tgmon run is alive, storing and connected to Telegram; else 1 with the reason."""

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        healthy, reason = check(heartbeat_path(settings.data_dir), max_age_s=max_age)
        if healthy:
            out.print(f"healthy: {reason}", markup=False)
        else:
            err.print(f"unhealthy: {reason}", markup=False)
            raise typer.Exit(1)

    guard(body)


@app.command()
def login(
    string: Annotated[
        bool, typer.Option("--string", help="Print a StringSession for TG_SESSION instead of saving a session file.")
    ] = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Log the user account in on a terminal (phone, code, 2FA) and keep the session."""

    async def body() -> None:
        from bot.sources.session import exclusive, session_path
        from bot.sources.session import login as login_user

        settings = settings_from(data_dir, config_dir, env_file)
        if not sys.stdin.isatty():
            raise UserError(
                "tgmon login needs a terminal to ask for the phone and code (docker compose run --rm -it …)"
            )
        with exclusive(settings):
            saved = await login_user(settings, string=string)
        if saved is not None:
            out.print("Put this in .env as TG_SESSION (it grants full access to the account; keep it secret):")
            out.print(saved, markup=False, highlight=False)
        else:
            out.print(f"Session saved to {session_path(settings)} (mode 0600).")

    run_async(body)


@app.command("check-config")
def check_config(
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Validate .env, channels.toml, rules.toml and alerts.toml; exit 2 with one line per problem."""

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        engine = rules_engine(settings, rules)
        policy = load_alerts_config(settings.alerts_config_path)
        env = settings.env
        policy.check(destination_names(settings))
        destinations = [*env.notifier_names, *(f"telegram:{chat}" for chat in env.analyst_chats)]
        destinations += [f"webhook ×{len(env.webhook_urls)}"] if env.webhook_urls else []
        destinations += [f"apprise ×{len(env.apprise_urls)}"] if env.apprise_urls else []
        out.print(
            f"config ok: {len(settings.channels.items)} channels ({settings.channels_path}), "
            f"{len(engine.rules)} rules ({engine.source}), data in {settings.data_dir}, "
            f"alerts to {', '.join(destinations) or 'nowhere'} "
            f"(cooldown {policy.cooldown.total_seconds():g} s, duplicates folded within "
            f"{policy.dedup_window.total_seconds() / 60:g} min, {len(policy.routes)} routes)"
        )
        if env.analyst_chats and not env.analysts:
            log.warning("commands.nobody_allowed", hint="set ANALYST_USER_IDS to answer /status and the others")

    guard(body)
