"""Rules from TOML: every problem found at load time, naming the rule id and the field."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.places import load_gazetteer
from bot.places.finder import PlaceFinder
from bot.rules.analyzer import Analyzer
from bot.rules.engine import Document, Engine
from bot.rules.loader import load_rules, parse_rules
from tests.helpers import RULES_TOML, T0


def problems(*rules: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_rules({"rule": list(rules)}, "rules.toml")
    lines = list(exc.value.lines)
    assert all("\n" not in line for line in lines)
    return lines


def test_bad_regex() -> None:
    (line,) = problems({"id": "bad-rx", "category": "incursion", "regex": ["(unclosed"]})
    assert line.startswith("rules.toml: rule[0] (bad-rx).regex: expected a valid regular expression")
    assert "(unclosed" in line


def test_unknown_key() -> None:
    (line,) = problems({"id": "typo", "category": "uav", "any": ["дрон"], "anny": ["беспилотник"]})
    assert line.startswith("rules.toml: rule[0] (typo).anny: unknown key")


def test_duplicate_id() -> None:
    (line,) = problems(
        {"id": "first", "category": "uav", "any": ["дрон"]},
        {"id": "dup", "category": "uav", "any": ["дрон"]},
        {"id": "dup", "category": "missile", "any": ["ракета"]},
    )
    assert line == "rules.toml: rule[2] (dup).id: already used by rule[1]"


def test_empty_term() -> None:
    (line,) = problems({"id": "empty", "category": "uav", "any": ["дрон", "!!!"]})
    assert line.startswith("rules.toml: rule[0] (empty).any: expected a word or phrase")
    assert "'!!!'" in line


def test_empty_term_in_none_and_all() -> None:
    lines = problems({"id": "r", "category": "uav", "any": ["дрон"], "none": [""], "all": [["курск", "..."]]})
    assert sorted(line.split(": ")[1] for line in lines) == ["rule[0] (r).all", "rule[0] (r).none"]


def test_bad_severity() -> None:
    (line,) = problems({"id": "sev", "category": "uav", "severity": "urgent", "any": ["дрон"]})
    assert line.startswith("rules.toml: rule[0] (sev).severity: expected ")
    assert "'urgent'" in line
    assert "critical" in line


def test_short_prefix() -> None:
    (line,) = problems({"id": "short", "category": "uav", "any": ["ша*"]})
    assert line.startswith("rules.toml: rule[0] (short).any: expected a prefix of at least 3 letters")


def test_rule_with_nothing_to_match() -> None:
    (line,) = problems({"id": "nothing", "category": "uav"})
    assert line.startswith("rules.toml: rule[0] (nothing): ")
    assert "any" in line
    assert "regex" in line


def test_missing_id() -> None:
    (line,) = problems({"category": "uav", "any": ["дрон"]})
    assert line == "rules.toml: rule[0].id: required key is missing"


def test_bad_language_and_channel() -> None:
    lines = problems({"id": "r", "category": "uav", "any": ["дрон"], "languages": ["de"], "channels": ["@x"]})
    assert len(lines) == 2
    assert any(line.startswith("rules.toml: rule[0] (r).languages[0]: expected ") for line in lines)
    assert any(line.startswith("rules.toml: rule[0] (r).channels: expected ") for line in lines)


def test_every_problem_at_once() -> None:
    lines = problems(
        {"id": "a", "category": "uav", "any": ["дрон"], "regex": ["["]},
        {"id": "b", "category": "uav", "severity": "loud", "any": ["дрон"]},
    )
    assert [line.split(": ")[1] for line in lines] == ["rule[0] (a).regex", "rule[1] (b).severity"]


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match=r"rules\.toml: rules: unknown key"):
        parse_rules({"rules": []}, "rules.toml")


def test_disabled_rules_dropped() -> None:
    specs = parse_rules(
        {
            "rule": [
                {"id": "a", "category": "c", "any": ["x"], "enabled": False},
                {"id": "b", "category": "c", "any": ["y"]},
            ]
        },
        "rules.toml",
    )
    assert [s.id for s in specs] == ["b"]


def test_load_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nid = "ua-evac"\ncategory = "evacuation"\nany = ["евакуація"]\nlanguages = ["uk"]\n', encoding="utf-8"
    )
    engine = load_rules(path)
    assert [r.id for r in engine.rules] == ["ua-evac"]
    assert engine.source == str(path)
    assert engine.verdict(Document("Оголошено евакуації")).category == "evacuation"


def test_load_rules_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "x"\ncategory = "c"\nany = ["слово"]\nregex = ["(("]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_rules(path)
    assert exc.value.lines[0].startswith(f"{path}: rule[0] (x).regex: ")


def test_load_rules_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "x"\ncategory = \n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 3"):
        load_rules(path)


def test_load_rules_without_enabled_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nid = "x"\ncategory = "c"\nany = ["слово"]\nenabled = false\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="no enabled"):
        load_rules(path)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_rules(tmp_path / "missing.toml")


def test_default_pack_loads(engine: Engine) -> None:
    assert engine.source == str(RULES_TOML)
    categories = {rule.category for rule in engine.rules}
    assert {"air_raid", "missile", "uav", "shelling", "evacuation", "incursion", "all_clear"} <= categories
    assert len({rule.id for rule in engine.rules}) == len(engine.rules)


# --- [monitors] --------------------------------------------------------------------------------------

RULE = '[[rule]]\nid = "uav"\ncategory = "uav"\nseverity = "high"\nany = ["шахеди"]\n'


def test_default_pack_monitor_times(engine: Engine) -> None:
    assert (engine.monitors.quiet, engine.monitors.reopen) == (timedelta(minutes=40), timedelta(hours=6))


def test_monitor_times_from_the_pack_drive_the_channel_context(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f"[monitors]\nquiet_minutes = 10\nreopen_minutes = 0\n\n{RULE}", encoding="utf-8")
    engine = load_rules(path)
    assert (engine.monitors.quiet, engine.monitors.reopen) == (timedelta(minutes=10), timedelta(0))
    analyzer = Analyzer(engine, PlaceFinder(load_gazetteer()))

    def alert(text: str, minute: int) -> bool:
        doc = Document(text, 1, None, frozenset({"monitors"}), T0 + timedelta(minutes=minute))
        return analyzer.verdict(doc).alert

    assert [alert("Шахеди", 0), alert("Обухів!!!", 10), alert("Обухів!!!", 21)] == [True, True, False]
    # A reloaded pack brings its times to the running context.
    path.write_text(f"[monitors]\nquiet_minutes = 60\n\n{RULE}", encoding="utf-8")
    analyzer.engine = load_rules(path)
    assert [alert("Шахеди", 30), alert("Обухів!!!", 85)] == [True, True]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("quiet_minutes = 0", "rules.toml: monitors.quiet_minutes: expected a positive number (got 0)"),
        (
            "reopen_minutes = -5",
            "rules.toml: monitors.reopen_minutes: expected a number of at least 0 (got -5)",
        ),
        ('quiet_minutes = "40m"', "rules.toml: monitors.quiet_minutes: expected a number"),
        ("quiet = 40", "rules.toml: monitors.quiet: unknown key"),
    ],
)
def test_bad_monitor_times(table: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_rules(tomllib.loads(f"[monitors]\n{table}\n\n{RULE}"), "rules.toml")
    assert exc.value.lines[0].startswith(problem), exc.value.lines
