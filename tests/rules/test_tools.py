"""`tgmon rules check|explain|lint`, and hot reload of a running service's rules."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.rules.engine import Engine
from bot.rules.loader import RulesReloader, load_rules
from tests.helpers import RULES_TOML

runner = CliRunner()


def test_rules_check_writes_one_line_per_input_line_with_offsets(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    lines = [
        {"text": "⚠️ Ракетная опасность в Белгороде", "channel_id": 1},
        {"text": "Погода на завтра: облачно"},
        {"text": "Отбой ракетной опасности."},
    ]
    posts.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(posts), "--rules", str(RULES_TOML)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["alert"], o["category"], o["all_clear"]) for o in out] == [
        (True, "missile", False),
        (False, None, False),
        (False, "all_clear", True),
    ]
    assert out[0]["channel_id"] == 1  # input fields are kept
    match = out[0]["matches"][0]
    assert lines[0]["text"][match["start"] : match["end"]] == "Ракетная опасность"  # type: ignore[index]
    assert set(match) == {"rule", "category", "severity", "start", "end", "term"}


def test_rules_check_reports_bad_lines_and_exits_2(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"text": "Воздушная тревога"}\nnot json\n{"text": 5}\n', encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(posts), "--rules", str(RULES_TOML)])
    assert result.exit_code == 2
    out = result.stdout.splitlines()
    assert len(out) == 3  # same order, one line per input line
    assert json.loads(out[1])["line"] == 2
    assert "text: expected a string" in json.loads(out[2])["error"]


def test_rules_explain_shows_lemmas_and_reasons() -> None:
    result = runner.invoke(
        app, ["rules", "explain", "Учения: воздушная тревога в школе", "--rules", str(RULES_TOML), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["alert"] is False
    assert {"text": "тревога", "normalized": "тревога", "lemmas": ["тревога"]} in report["tokens"]
    air_raid = next(r for r in report["rules"] if r["rule"] == "air-raid")
    assert air_raid["reason"] == "excluded by `none` term: учения"


def test_rules_lint_is_clean_on_the_default_pack_and_finds_problems(tmp_path: Path) -> None:
    assert runner.invoke(app, ["rules", "lint", "--rules", str(RULES_TOML)]).exit_code == 0
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[[rule]]\nid = "a"\ncategory = "uav"\nany = ["безпилотникк", "дрон"]\nnone = ["дрон"]\n'
        '[[rule]]\nid = "b"\ncategory = "uav"\nany = ["дрон"]\nregex = ["x*"]\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["rules", "lint", "--rules", str(bad)])
    assert result.exit_code == 1
    assert "'безпилотникк' is in neither the Russian nor the Ukrainian dictionary" in result.stdout
    assert "'дрон' is also an `any` term: the rule cannot fire on it" in result.stdout
    assert "'дрон' repeats a term of rule a" in result.stdout
    assert "matches the empty string" in result.stdout


def test_bad_rules_file_is_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "a"\ncategory = "uav"\nany = ["дрон"]\nregex = ["(unclosed"]\nseverity = "max"\n')
    result = runner.invoke(app, ["check-config", "--rules", str(bad)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("rule[0] (a).regex" in e and "a valid regular expression" in e for e in errors)
    assert any("rule[0] (a).severity" in e for e in errors)
    assert "Traceback" not in result.output


async def test_reload_swaps_in_a_good_file_and_keeps_the_old_rules_on_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "a"\ncategory = "uav"\nany = ["дрон"]\n', encoding="utf-8")
    current: list[Engine] = [load_rules(path)]
    reloader = RulesReloader(path, current.append, interval=0.01)

    path.write_text('[[rule]]\nid = "b"\ncategory = "shelling"\nany = ["обстрел"]\n', encoding="utf-8")
    assert await reloader.reload("test")
    assert [r.id for r in current[-1].rules] == ["b"]

    path.write_text('[[rule]]\nid = "c"\ncategory = "uav"\nregex = ["(bad"]\n', encoding="utf-8")
    assert not await reloader.reload("test")
    assert [r.id for r in current[-1].rules] == ["b"]  # the old rules stay


async def test_reload_watches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "a"\ncategory = "uav"\nany = ["дрон"]\n', encoding="utf-8")
    swapped = asyncio.Event()
    reloader = RulesReloader(path, lambda _: swapped.set(), interval=0.01)
    watcher = asyncio.create_task(reloader.watch())
    try:
        path.write_text('[[rule]]\nid = "b"\ncategory = "uav"\nany = ["шахед"]\n', encoding="utf-8")
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + 5))  # a distinct mtime whatever the clock's resolution
        await asyncio.wait_for(swapped.wait(), timeout=10)
    finally:
        watcher.cancel()
