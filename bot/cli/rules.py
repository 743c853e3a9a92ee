"""`tgmon rules check|explain|lint`: the rule pack as an analyst tunes it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from bot.cli.common import (
    ConfigDir,
    DataDir,
    EnvFile,
    JsonOpt,
    RulesOpt,
    app,
    err,
    guard,
    out,
    rules_engine,
    settings_from,
)
from bot.errors import UserError
from bot.places.finder import PlaceFinder
from bot.places.gazetteer import load_gazetteer
from bot.rules.analyzer import Analyzer
from bot.rules.engine import Document, Match
from bot.rules.lint import lint, unused_tags
from bot.rules.loader import parse_rules
from bot.rules.morphology import lemmas
from bot.settings import Channels, read_toml
from bot.sources.replay import parse_time

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


def _place_line(place: dict[str, Any]) -> str:
    """`Обухів (city in Обухівський район, Київська область) from east, 2`."""
    where = ", ".join(dict.fromkeys(p for p in (place["parent"], place["oblast"]) if p and p != place["name"]))
    extra = " ".join(str(place[k]) for k in ("direction", "count") if place.get(k) is not None)
    return (
        f"{place['name']} ({place['kind']}" + (f" in {where}" if where else "") + ")" + (f" {extra}" if extra else "")
    )


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
        settings = settings_from(data_dir, config_dir, env_file)
        analyzer = Analyzer(rules_engine(settings, rules), PlaceFinder(load_gazetteer()), settings.channels.homes_of)
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
                    verdict = analyzer.verdict(_document(record, settings.channels))
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
                    places=[mention.as_json() for mention in verdict.places],
                )
                sink.write(orjson.dumps(record) + b"\n")
        if bad:
            raise UserError(f"{file}: {bad} line(s) could not be checked (see above)")

    guard(body)


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
        settings = settings_from(data_dir, config_dir, env_file)
        engine = rules_engine(settings, rules)
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
        places = [m.as_json() for m in PlaceFinder(load_gazetteer()).find(text, alarm=bool(verdict.matches))]
        if as_json:
            out.print_json(
                data={"tokens": tokens, "alert": verdict.alert, "all_clear": verdict.all_clear,
                      "category": verdict.category, "severity": verdict.severity, "places": places,
                      "rules": reports}
            )  # fmt: skip
            return
        out.print("tokens: " + "  ".join(f"{t['text']}→{'/'.join(t['lemmas'])}" for t in tokens), markup=False)
        state = "ALERT" if verdict.alert else ("ALL-CLEAR" if verdict.all_clear else "no alert")
        out.print(f"verdict: {state}" + (f" · {verdict.category} ({verdict.severity})" if verdict.category else ""))
        out.print("places: " + ("; ".join(_place_line(p) for p in places) or "none"), markup=False)
        quiet = 0
        for report in sorted(explanation.reports, key=lambda r: (not r.fired, not r.hits)):
            if not report.fired and not report.hits and report.reason.startswith("no "):
                quiet += 1
                continue
            found = ", ".join(repr(text[a:b]) for _, (a, b) in report.hits) or "-"
            mark = "✔" if report.fired else "✘"
            out.print(f"  {mark} {report.rule} ({report.category}): {report.reason}; found {found}", markup=False)
        out.print(f"  {quiet} other rule(s) found none of their terms", markup=False)

    guard(body)


@rules_app.command("lint")
def rules_lint(
    rules: RulesOpt = None,
    data_dir: DataDir = None,
    config_dir: ConfigDir = None,
    env_file: EnvFile = None,
) -> None:
    """Warnings about rules that load but may not do what was meant; exit 1 if there are any."""

    def body() -> None:
        settings = settings_from(data_dir, config_dir, env_file)
        path = rules or settings.rules_path
        specs = parse_rules(read_toml(path), str(path))
        tags = {tag for channel in settings.channels.items for tag in channel.tags}
        warnings = lint(specs, str(path))
        if settings.channels.items:  # with no channel configured yet, every tag is "unused"
            warnings += unused_tags(specs, tags, str(settings.channels_path))
        for line in warnings:
            out.print(f"warning: {line}", markup=False)
        out.print(f"{len(specs)} rules, {len(warnings)} warning(s)")
        if warnings:
            raise typer.Exit(1)

    guard(body)
