"""The `tgmon` command (also `python -m bot`).

Every command takes --data-dir, --config-dir and --env-file; bad input of any kind ends with one
line per problem on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import tomlkit
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from bot import __version__
from bot.alerts.notifiers import ConsoleNotifier, JsonlNotifier, Notifier
from bot.alerts.outbox import Dispatcher
from bot.errors import UserError
from bot.logging import configure as configure_logging
from bot.logging import get_logger, register_secrets
from bot.pipeline import Pipeline, RunStats
from bot.rules.engine import Document, Engine, Match
from bot.rules.lint import lint, unused_tags
from bot.rules.loader import RulesReloader, load_rules, parse_rules
from bot.rules.morphology import lemmas
from bot.rules.query import is_fts_syntax, query_words, search_expression, snippet
from bot.settings import ChannelConfig, Channels, Settings, load_channels, load_settings, parse_username, read_toml
from bot.sources.channels import ChannelRegistry
from bot.sources.media import MediaDownloader
from bot.sources.recording import Recorder
from bot.sources.replay import ReplaySource, parse_time
from bot.sources.session import connect_authorized, exclusive, session_path
from bot.sources.session import login as login_user
from bot.sources.telegram import TelegramSource
from bot.store.sqlite import SQLiteStore, open_store

T = TypeVar("T")
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


def _settings(data_dir: Path | None, config_dir: Path | None, env_file: Path | None) -> Settings:
    settings = load_settings(env_file=env_file, data_dir=data_dir, config_dir=config_dir)
    register_secrets(settings.env.secrets())
    configure_logging(settings.env.log_level, settings.env.log_format)
    return settings


def _fail(error: UserError) -> typer.Exit:
    for line in error.lines:
        err.print(f"error: {line}", markup=False)
    return typer.Exit(error.exit_code)


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body: user errors become one line each on stderr and exit code 2."""
    try:
        return fn()
    except UserError as exc:
        raise _fail(exc) from None


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return _guard(lambda: asyncio.run(main()))


def _packaged(name: str) -> Path:
    return Path(str(resources.files("bot") / name))


def _rules(settings: Settings, override: Path | None) -> Engine:
    path = override or settings.rules_path
    if override is None and not path.exists():
        path = _packaged("rules/default.toml")
        log.info("rules.default_pack", path=str(path), hint=f"create {settings.rules_path} to customise")
    return load_rules(path)


def _notifiers(settings: Settings, data_dir: Path, console: Console | None = None) -> list[Notifier]:
    made: list[Notifier] = []
    for name in settings.env.notifier_names:
        if name == "console":
            made.append(ConsoleNotifier(console, settings.env.tz))
        elif name == "jsonl":
            made.append(JsonlNotifier(data_dir / "alerts.jsonl"))
    return made


@contextlib.contextmanager
def _signals(on_signal: Callable[[], None]) -> Iterator[None]:
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
async def _store(data_dir: Path, create: bool) -> AsyncIterator[SQLiteStore]:
    store = await open_store(data_dir, create=create)
    try:
        yield store
    finally:
        await store.close()


def _progress(enabled: bool) -> Progress | None:
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


async def _replay(
    settings: Settings,
    engine: Engine,
    channels: Channels,
    files: list[Path],
    data_dir: Path,
    rate: float | None,
    wait: bool,
    show_progress: bool,
    wanted: Callable[[int], bool] | None = None,
    tl: bool = False,
) -> tuple[RunStats, ReplaySource, dict[str, Any]]:
    progress = _progress(show_progress)
    tasks: dict[Path, Any] = {}

    def on_progress(path: Path, done: int, total: int) -> None:
        if progress is None:
            return
        if path not in tasks:
            tasks[path] = progress.add_task(path.name, total=total)
        progress.update(tasks[path], completed=done)

    source = ReplaySource(files, rate=rate, on_progress=on_progress, wanted=wanted, tl=tl)
    async with _store(data_dir, create=True) as store:
        dispatcher = Dispatcher(store, _notifiers(settings, data_dir))
        pipeline = Pipeline(store, engine, dispatcher, channels)
        with _signals(pipeline.stop), progress or contextlib.nullcontext():
            stats = await pipeline.run(source, drain=wait)
        return stats, source, await store.stats()


def _summary(stats: RunStats, source: ReplaySource, totals: dict[str, Any]) -> Table:
    table = Table(title="tgmon replay", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    outcomes = stats.outcomes
    table.add_row(
        "read",
        f"{source.counters.events} events in {stats.elapsed:.2f} s"
        + (f" ({source.counters.events / stats.elapsed:,.0f}/s)" if stats.elapsed else ""),
    )
    table.add_row("stored", f"{outcomes['new']} new posts, {outcomes['edited']} edits, {outcomes['deleted']} deletions")
    repeat = outcomes["unchanged"] + outcomes["refreshed"]
    if repeat:
        table.add_row("already stored", str(repeat))
    if source.counters.bad:
        table.add_row("skipped", f"{source.counters.bad} bad records (see the log for file and line)")
    if outcomes["unknown"]:
        table.add_row("orphan edits", f"{outcomes['unknown']} edits of posts not in the archive")
    alerts = ", ".join(f"{k} {v}" for k, v in stats.alerts.most_common()) or "none"
    table.add_row("alerts raised", f"{stats.alerts.total()} ({alerts})")
    table.add_row(
        "archive",
        f"{totals['posts']} posts, {totals['media']} media, {totals['edits']} edits, "
        f"{totals['deletions']} deletions, {totals['alerts']} alerts in {totals['database']}",
    )
    if totals["pending_deliveries"]:
        table.add_row("queued", f"{totals['pending_deliveries']} alert deliveries wait for the next start")
    return table


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="JSONL files or Telegram Desktop exports (result.json).")],
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.1, help="Events per second (default: as fast as possible)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Exit only after every alert raised has been delivered.")
    ] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal.")] = True,
    tl: Annotated[
        bool, typer.Option("--tl", help="The files are raw TL objects, as `tgmon run --record` writes (auto-detected).")
    ] = False,
    only_configured: Annotated[
        bool, typer.Option("--only-configured", help="Keep only the channels listed in channels.toml.")
    ] = False,
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Store posts from files, raise alerts, and resume where it stopped if run again."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        engine = _rules(settings, rules)
        channels = settings.channels
        wanted = (lambda channel_id: channels.lookup(channel_id) is not None) if only_configured else None
        stats, source, totals = await _replay(
            settings, engine, channels, files, settings.data_dir, rate, wait, progress, wanted, tl
        )
        err.print(_summary(stats, source, totals))

    _run(body)


@app.command()
def demo(
    rate: Annotated[float, typer.Option("--rate", min=0.0, help="Posts per second; 0 for no pause.")] = 25.0,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Replay the bundled sample feed (Belgorod and Kursk, March 2024) into <data-dir>/demo."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        demo_dir = settings.data_dir / "demo"
        if demo_dir.exists():
            shutil.rmtree(demo_dir)
        engine = _rules(settings, None)
        channels = load_channels(_packaged("demo/channels.toml"))
        feed = _packaged("demo/feed.jsonl")
        err.print(f"tgmon {__version__} demo: replaying {feed.name} into {demo_dir}/ with {len(engine.rules)} rules\n")
        stats, _source, totals = await _replay(
            settings, engine, channels, [feed], demo_dir, rate or None, wait=True, show_progress=False
        )
        table = Table(title="demo summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        table.add_row("posts stored", str(totals["posts"]))
        table.add_row("channels", str(totals["channels"]))
        table.add_row("media rows", ", ".join(f"{k} {v}" for k, v in totals["media_by_kind"].items()) or "0")
        table.add_row("edits kept", str(totals["edits"]))
        table.add_row("deletions marked", str(totals["deletions"]))
        by_category = ", ".join(f"{k} {v}" for k, v in totals["alerts_by_category"].items()) or "none"
        table.add_row("alerts", f"{totals['alerts']} ({by_category})")
        table.add_row("elapsed", f"{stats.elapsed:.2f} s")
        table.add_row("alert log", str(demo_dir / "alerts.jsonl"))
        err.print(table)
        err.print(f"\nExplore it: tgmon search эвакуация --data-dir {demo_dir}  ·  tgmon stats --data-dir {demo_dir}")

    _run(body)


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
        settings = _settings(data_dir, config_dir, env_file)
        engine = _rules(settings, rules)
        with exclusive(settings):
            client = await connect_authorized(settings)
            try:
                await _serve(settings, engine, client, dry_run=dry_run, record=record)
            finally:
                await client.disconnect()

    _run(body)


async def _serve(settings: Settings, engine: Engine, client: Any, *, dry_run: bool, record: Path | None) -> None:
    env = settings.env
    async with _store(settings.data_dir, create=True) as store:
        notifiers = [] if dry_run else _notifiers(settings, settings.data_dir)
        dispatcher = Dispatcher(store, notifiers, digest_after=env.digest_after)
        pipeline = Pipeline(store, engine, dispatcher, settings.channels)
        reloader = RulesReloader(Path(engine.source), lambda new: setattr(pipeline, "engine", new))
        wants_media = any(c.download_media for c in settings.channels.items)
        media = (
            MediaDownloader(client, settings.data_dir, int(env.media_max_mb * 1024 * 1024), store.write)
            if wants_media
            else None
        )
        recorder = Recorder(record) if record is not None else None
        progress = _progress(True)
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
        watcher = asyncio.create_task(reloader.watch(), name="rules-watch")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reloader.reload("SIGHUP")))
        try:
            with _signals(pipeline.stop), progress or contextlib.nullcontext():
                stats = await pipeline.run(source, drain=False)
        finally:
            watcher.cancel()
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGHUP)
            if recorder is not None:
                recorder.close()
        log.info("service.stopped", events=stats.events, alerts=stats.alerts.total(), flood_waits=source.flood.waits)


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
        settings = _settings(data_dir, config_dir, env_file)
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

    _run(body)


@app.command("check-config")
def check_config(
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Validate .env, channels.toml and rules.toml; exit 2 with one line per problem."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        engine = _rules(settings, rules)
        out.print(
            f"config ok: {len(settings.channels.items)} channels ({settings.channels_path}), "
            f"{len(engine.rules)} rules ({engine.source}), data in {settings.data_dir}, "
            f"alerts to {', '.join(settings.env.notifier_names) or 'nowhere'}"
        )

    _guard(body)


@app.command()
def stats(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Counts of the archive: posts, channels, media, edits, deletions, alerts and deliveries."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        async with _store(settings.data_dir, create=False) as store:
            totals = await store.stats()
        if as_json:
            out.print_json(data=totals)
            return
        table = Table(show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in totals.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
            table.add_row(key.replace("_", " "), str(value))
        out.print(table)

    _run(body)


def parse_since(value: str | None) -> datetime | None:
    """ISO date/time, or a relative age such as 24h, 7d, 90m."""
    if value is None:
        return None
    relative = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return datetime.now(UTC) - delta
    try:
        return parse_time(value, "--since")
    except ValueError:
        raise UserError(
            f"--since: expected a date such as 2024-03-12, a time, or an age such as 24h or 7d (got {value!r})"
        ) from None


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Words to find, any inflection (or FTS5 syntax with --raw).")],
    channel: Annotated[str | None, typer.Option("--channel", help="@username, id or title.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="2024-03-12, an ISO time, or an age: 24h, 7d.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many posts, newest first.")] = 20,
    raw: Annotated[bool, typer.Option("--raw", help="Pass the query to SQLite FTS5 as it is.")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Full-text search of the archive; "эвакуация" also finds "эвакуации", "эвакуацию"."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        expression = query if raw or is_fts_syntax(query) else search_expression(query)
        async with _store(settings.data_dir, create=False) as store:
            await store.flush()
            rows = await store.search(expression, channel, parse_since(since), limit)
        if as_json:
            out.print_json(data=rows)
            return
        if not rows:
            err.print(f"no posts match {query!r}")
            return
        words = query_words(query)
        for row in rows:
            name = row["channel_title"] or row["channel_id"]
            out.print(f"[bold]{row['date']}[/] {name} #{row['message_id']}", highlight=False)
            out.print(Text("  ").append_text(snippet(row["text"], words)))

    _run(body)


_CSV_FIELDS = (
    "channel_id",
    "channel_username",
    "channel_title",
    "message_id",
    "date",
    "edit_date",
    "text",
    "views",
    "forwards",
    "replies",
    "reply_to",
    "forward_from",
    "grouped_id",
    "author",
    "deleted",
    "versions",
    "media",
)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option("--since", help="2024-03-12, an ISO time, or an age: 24h, 7d.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Every stored post, one per line (jsonl) or row (csv), with media, versions and deletions."""

    if fmt not in ("jsonl", "csv"):
        raise _fail(UserError(f"--format: expected jsonl or csv (got {fmt!r})"))

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        cutoff = parse_since(since)
        async with _store(settings.data_dir, create=False) as store:
            with (
                output.open("w", encoding="utf-8", newline="") if output else contextlib.nullcontext(sys.stdout)
            ) as sink:
                writer = csv.DictWriter(sink, _CSV_FIELDS, extrasaction="ignore") if fmt == "csv" else None
                if writer:
                    writer.writeheader()
                count = 0
                async for row in store.export(cutoff):
                    count += 1
                    if writer:
                        writer.writerow(_csv_row(row))
                    else:
                        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        if output:
            err.print(f"exported {count} posts to {output}")

    _run(body)


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = dict(row)
    flat["forward_from"] = (row["forward_from"] or {}).get("name") if row["forward_from"] else None
    flat["media"] = json.dumps(row["media"], ensure_ascii=False) if row["media"] else ""
    return flat


rules_app = typer.Typer(
    help="Check, explain and lint alert rules.", no_args_is_help=True, rich_markup_mode=None, add_completion=False
)
app.add_typer(rules_app, name="rules")


def _document(record: dict[str, Any], channels: Channels) -> Document:
    """A `rules check` input line as the engine sees it: tags from the line, else from channels.toml."""
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("text: expected a string")
    channel_id = record.get("channel_id")
    if channel_id is not None and (isinstance(channel_id, bool) or not isinstance(channel_id, int)):
        raise ValueError(f"channel_id: expected an integer (got {channel_id!r})")
    username = record.get("username") if isinstance(record.get("username"), str) else None
    tags = record.get("channel_tags")
    if tags is None:
        tags = channels.tags_of(channel_id, username) if channel_id is not None else ()
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"channel_tags: expected a list of strings (got {tags!r})")
    date = parse_time(record["timestamp"], "timestamp") if record.get("timestamp") else None
    return Document(text, channel_id, username, frozenset(tags), date)


def _match_json(match: Match) -> dict[str, Any]:
    return {
        "rule": match.rule,
        "category": match.category,
        "severity": match.severity,
        "start": match.start,
        "end": match.end,
        "term": match.term,
    }


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="JSONL with a `text` field per line; `-` for stdin.")],
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Match every line of FILE: one JSON line out per line in, with alert, category, all_clear, matches."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        engine = _rules(settings, rules)
        bad = 0
        with contextlib.ExitStack() as stack:
            if str(file) == "-":
                lines: Iterator[bytes] = iter(sys.stdin.buffer)
            else:
                try:
                    lines = stack.enter_context(file.open("rb"))
                except OSError as exc:
                    raise UserError(f"{file}: cannot read: {exc.strerror}") from None
            sink = sys.stdout.buffer
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    record = orjson.loads(raw)
                    if not isinstance(record, dict):
                        raise ValueError("expected a JSON object")
                    verdict = engine.verdict(_document(record, settings.channels))
                except ValueError as exc:
                    bad += 1
                    err.print(f"error: {file}:{number}: {exc}", markup=False)
                    sink.write(orjson.dumps({"line": number, "error": str(exc)}) + b"\n")
                    continue
                record.update(
                    alert=verdict.alert,
                    category=verdict.category,
                    all_clear=verdict.all_clear,
                    matches=[_match_json(m) for m in verdict.matches],
                )
                sink.write(orjson.dumps(record) + b"\n")
        if bad:
            raise UserError(f"{file}: {bad} line(s) could not be checked (see above)")

    _guard(body)


@rules_app.command("explain")
def rules_explain(
    text: Annotated[str, typer.Argument(help="A post's text.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A channel tag the post comes with (repeatable).")
    ] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="The channel's @username.")] = None,
    as_json: JsonOpt = False,
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Tokens, lemmas, and for each rule why it did or did not fire on TEXT."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        engine = _rules(settings, rules)
        username = channel.removeprefix("@") if channel else None
        explanation = engine.explain(Document(text, None, username, frozenset(tag or ())))
        tokens = [
            {"text": text[t.start : t.end], "normalized": t.text, "lemmas": list(lemmas(t.text))}
            for t in explanation.tokens
        ]
        reports = [
            {"rule": r.rule, "category": r.category, "fired": r.fired, "reason": r.reason,
             "hits": [{"term": term, "start": a, "end": b, "text": text[a:b]} for term, (a, b) in r.hits]}
            for r in explanation.reports
        ]  # fmt: skip
        verdict = explanation.verdict
        if as_json:
            out.print_json(
                data={"tokens": tokens, "alert": verdict.alert, "all_clear": verdict.all_clear,
                      "category": verdict.category, "severity": verdict.severity, "rules": reports}
            )  # fmt: skip
            return
        out.print("tokens: " + "  ".join(f"{t['text']}→{'/'.join(t['lemmas'])}" for t in tokens), markup=False)
        state = "ALERT" if verdict.alert else ("ALL-CLEAR" if verdict.all_clear else "no alert")
        out.print(f"verdict: {state}" + (f" · {verdict.category} ({verdict.severity})" if verdict.category else ""))
        quiet = 0
        for report in sorted(explanation.reports, key=lambda r: (not r.fired, not r.hits)):
            if not report.fired and not report.hits and report.reason.startswith("no "):
                quiet += 1
                continue
            found = ", ".join(repr(text[a:b]) for _, (a, b) in report.hits) or "-"
            mark = "✔" if report.fired else "✘"
            out.print(f"  {mark} {report.rule} ({report.category}): {report.reason}; found {found}", markup=False)
        out.print(f"  {quiet} other rule(s) found none of their terms", markup=False)

    _guard(body)


@rules_app.command("lint")
def rules_lint(
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Warnings about rules that load but may not do what was meant; exit 1 if there are any."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        path = rules or settings.rules_path
        specs = parse_rules(read_toml(path), str(path))
        tags = {tag for channel in settings.channels.items for tag in channel.tags}
        warnings = lint(specs, str(path)) + unused_tags(specs, tags, str(settings.channels_path))
        for line in warnings:
            out.print(f"warning: {line}", markup=False)
        out.print(f"{len(specs)} rules, {len(warnings)} warning(s)")
        if warnings:
            raise typer.Exit(1)

    _guard(body)


channels_app = typer.Typer(
    help="The channels tgmon follows (config/channels.toml), and what Telegram says of them.",
    no_args_is_help=True,
)
app.add_typer(channels_app, name="channels")


def _channel_ref(ref: str) -> dict[str, Any]:
    """A numeric id, @username or t.me link, as channels.toml keys; a bad one is a UserError."""
    text = ref.strip().removeprefix("-100") if ref.strip().startswith("-100") else ref.strip()
    if text.isdigit():
        return {"id": int(text)}
    try:
        return {"username": parse_username(text)}
    except ValueError as exc:
        raise UserError(f"{ref}: {exc}, or a numeric channel id") from None


def _matches(config: ChannelConfig, ref: dict[str, Any]) -> bool:
    if "id" in ref:
        return bool(config.id == ref["id"])
    return config.username is not None and config.username.lower() == str(ref["username"]).lower()


def _edit_channels(path: Path, edit: Callable[[tomlkit.TOMLDocument], None]) -> None:
    """Change channels.toml through tomlkit (the operator's comments stay), validate, then replace it."""
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    edit(document)
    text = tomlkit.dumps(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".new")
    scratch.write_text(text, encoding="utf-8")
    try:
        load_channels(scratch)
    except UserError:
        scratch.unlink()
        raise
    scratch.replace(path)


@channels_app.command("list")
def channels_list(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Configured channels with what the archive knows: id, title, availability, posts, latest post."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        known: list[dict[str, Any]] = []
        if settings.db_path.exists():
            async with _store(settings.data_dir, create=False) as store:
                known = await store.channel_overview()
        by_id = {k["id"]: k for k in known}
        by_name = {str(k["username"]).lower(): k for k in known if k["username"]}
        rows = []
        for config in settings.channels.items:
            record = by_id.get(config.id or 0) or by_name.get((config.username or "").lower()) or {}
            status = "not resolved yet"
            if record:
                status = "ok" if record["available"] else f"unavailable: {record['unavailable_reason']}"
            rows.append(
                {
                    "channel": f"@{config.username}" if config.username else str(config.id),
                    "id": record.get("id", config.id),
                    "title": record.get("title") or config.title,
                    "tags": list(config.tags),
                    "join": config.join,
                    "download_media": config.download_media,
                    "status": status,
                    "posts": record.get("posts", 0),
                    "last_post": record.get("last_post"),
                }
            )
        if as_json:
            out.print_json(data=rows)
            return
        table = Table(title=f"{len(rows)} channels in {settings.channels_path}", title_justify="left")
        for column in ("channel", "id", "title", "tags", "status", "posts", "last post"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["channel"], str(row["id"] or "?"), row["title"] or "", ", ".join(row["tags"]),
                row["status"], str(row["posts"]), row["last_post"] or "",
            )  # fmt: skip
        out.print(table)

    _run(body)


@channels_app.command("add")
def channels_add(
    ref: Annotated[str, typer.Argument(help="@username, t.me link or numeric channel id.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag for rules to scope to (repeatable).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Display name until Telegram reports one.")] = None,
    join: Annotated[bool, typer.Option("--join/--no-join", help="Join it, for live updates.")] = True,
    download_media: Annotated[
        bool, typer.Option("--download-media", help="Download its media files (up to TG_MEDIA_MAX_MB).")
    ] = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Add a channel to channels.toml (the running service picks it up on its next start)."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        key = _channel_ref(ref)
        for config in settings.channels.items:
            if _matches(config, key):
                raise UserError(f"{settings.channels_path}: {ref} is already listed")
        entry = tomlkit.table()
        for name, value in key.items():
            entry[name] = value
        if title:
            entry["title"] = title
        if tag:
            entry["tags"] = list(dict.fromkeys(tag))
        if not join:
            entry["join"] = False
        if download_media:
            entry["download_media"] = True

        def edit(document: tomlkit.TOMLDocument) -> None:
            channels = document.get("channel")
            if channels is None:
                channels = tomlkit.aot()
                document["channel"] = channels
            channels.append(entry)

        _edit_channels(settings.channels_path, edit)
        out.print(f"Added {ref} to {settings.channels_path}; restart the service (tgmon run) to follow it.")

    _guard(body)


@channels_app.command("remove")
def channels_remove(
    ref: Annotated[str, typer.Argument(help="@username, t.me link or numeric id, as listed.")],
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Stop following a channel: it leaves channels.toml; its archived posts stay."""

    def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        key = _channel_ref(ref)
        if not any(_matches(c, key) for c in settings.channels.items):
            listed = ", ".join(f"@{c.username}" if c.username else str(c.id) for c in settings.channels.items)
            raise UserError(f"{settings.channels_path}: {ref} is not listed (listed: {listed or 'none'})")

        def edit(document: tomlkit.TOMLDocument) -> None:
            channels = document["channel"]
            for index, entry in enumerate(list(channels)):
                if _matches(ChannelConfig.model_validate(dict(entry)), key):
                    del channels[index]
                    break
            if not len(channels):
                del document["channel"]

        _edit_channels(settings.channels_path, edit)
        out.print(f"Removed {ref} from {settings.channels_path}; its archived posts stay in the database.")

    _guard(body)


@channels_app.command("resolve")
def channels_resolve(
    join: Annotated[bool, typer.Option("--join/--no-join", help="Also join the channels set to join.")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Ask Telegram for every configured channel once; keep id and access hash; report the unreachable."""

    async def body() -> None:
        settings = _settings(data_dir, config_dir, env_file)
        with exclusive(settings):
            client = await connect_authorized(settings)
            try:
                async with _store(settings.data_dir, create=True) as store:
                    registry = ChannelRegistry(client, settings.channels, await store.channel_records(), store.write)
                    followed = await registry.resolve_all(join=join)
            finally:
                await client.disconnect()
        rows: list[dict[str, Any]] = [
            {"channel": f.label, "id": f.id, "title": f.channel.title, "joined": f.joined, "status": "ok"}
            for f in followed.values()
        ] + [
            {"channel": label, "id": None, "title": None, "joined": False, "status": reason}
            for label, reason in registry.unavailable.items()
        ]
        if as_json:
            out.print_json(data=rows)
        else:
            table = Table(title="channels as Telegram sees them", title_justify="left")
            for column in ("channel", "id", "title", "joined", "status"):
                table.add_column(column)
            for row in rows:
                table.add_row(
                    row["channel"], str(row["id"] or ""), row["title"] or "", "yes" if row["joined"] else "no",
                    row["status"],
                )  # fmt: skip
            out.print(table)
        if registry.unavailable:
            raise typer.Exit(1)

    _run(body)


def _version(value: bool) -> None:
    if value:
        out.print(f"tgmon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Archive public Telegram channels and alert analysts when posts talk about danger."""


def main() -> None:
    app()
