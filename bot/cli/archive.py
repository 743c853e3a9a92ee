"""Commands on the archive: replay files into it, the demo, stats, search and export."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bot import __version__
from bot.cli.common import (
    ConfigDir,
    DataDir,
    EnvFile,
    JsonOpt,
    Matcher,
    RulesOpt,
    alerting,
    app,
    err,
    fail,
    guard,
    opened_store,
    out,
    packaged,
    progress_bar,
    rules_engine,
    rules_matcher,
    run_async,
    settings_from,
    stop_on_signals,
)
from bot.errors import UserError
from bot.pipeline import Pipeline, RunStats
from bot.rules.query import is_fts_syntax, query_words, search_expression, snippet
from bot.settings import Channels, Settings, load_channels
from bot.sources.replay import ReplaySource, parse_time

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


async def _replay(
    settings: Settings,
    engine: Matcher,
    channels: Channels,
    files: list[Path],
    data_dir: Path,
    rate: float | None,
    wait: bool,
    show_progress: bool,
    wanted: Callable[[int, str | None], bool] | None = None,
    tl: bool = False,
) -> tuple[RunStats, ReplaySource, dict[str, Any]]:
    progress = progress_bar(show_progress)
    tasks: dict[Path, Any] = {}

    def on_progress(path: Path, done: int, total: int) -> None:
        if progress is None:
            return
        if path not in tasks:
            tasks[path] = progress.add_task(path.name, total=total)
        progress.update(tasks[path], completed=done)

    source = ReplaySource(files, rate=rate, on_progress=on_progress, wanted=wanted, tl=tl)
    async with opened_store(data_dir, create=True) as store, alerting(settings, data_dir) as alerts:
        pipeline = Pipeline(store, engine, alerts.dispatcher(store, settings), channels, policy=alerts.policy(channels))
        with stop_on_signals(pipeline.stop), progress or contextlib.nullcontext():
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
        settings = settings_from(data_dir, config_dir, env_file)
        channels = settings.channels
        wanted = (lambda cid, username: channels.lookup(cid, username) is not None) if only_configured else None
        async with rules_matcher(settings, rules, channels) as matcher:
            stats, source, totals = await _replay(
                settings, matcher, channels, files, settings.data_dir, rate, wait, progress, wanted, tl
            )
        err.print(_summary(stats, source, totals))

    run_async(body)


@app.command()
def demo(
    rate: Annotated[float, typer.Option("--rate", min=0.0, help="Posts per second; 0 for no pause.")] = 25.0,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Replay the bundled sample feed (Belgorod and Kursk, March 2024) into <data-dir>/demo."""

    async def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        demo_dir = settings.data_dir / "demo"
        if demo_dir.exists():
            shutil.rmtree(demo_dir)
        engine = rules_engine(settings, None)
        channels = load_channels(packaged("demo/channels.toml"))
        feed = packaged("demo/feed.jsonl")
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

    run_async(body)


@app.command()
def stats(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Counts of the archive: posts, channels, media, edits, deletions, alerts and deliveries."""

    async def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        async with opened_store(settings.data_dir, create=False) as store:
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

    run_async(body)


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="File to write (replaced once the copy is checked), or a folder.")],
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Copy the archive while tgmon runs (SQLite's online backup), checked, mode 0600.

    A folder gets a dated file, tgmon-YYYYMMDD-HHMMSS.db. The search index is not copied: it is
    rebuilt from the posts when a restored archive is opened."""
    from bot.store.sqlite import DB_NAME
    from bot.store.sqlite import backup as backup_database

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        target = path / f"tgmon-{datetime.now(UTC):%Y%m%d-%H%M%S}.db" if path.is_dir() else path
        started = time.monotonic()
        backup_database(settings.data_dir / DB_NAME, target)
        size = target.stat().st_size / 2**20
        out.print(f"backup written: {target} ({size:.1f} MB, integrity ok, {time.monotonic() - started:.1f} s)")

    guard(body)


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
        settings = settings_from(data_dir, config_dir, env_file)
        expression = query if raw or is_fts_syntax(query) else search_expression(query)
        async with opened_store(settings.data_dir, create=False) as store:
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

    run_async(body)


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
        raise fail(UserError(f"--format: expected jsonl or csv (got {fmt!r})"))

    async def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        cutoff = parse_since(since)
        async with opened_store(settings.data_dir, create=False) as store:
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

    run_async(body)


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = dict(row)
    flat["forward_from"] = (row["forward_from"] or {}).get("name") if row["forward_from"] else None
    flat["media"] = json.dumps(row["media"], ensure_ascii=False) if row["media"] else ""
    return flat
