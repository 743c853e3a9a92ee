"""The default pack against labelled posts: precision and recall at least 0.95, misses printed.

tests/data/rules_eval.jsonl holds 527 posts (real ones from ../shared/data with their source, and
written ones for what the corpus lacks), labelled by the product's definition of an alert; see
tests/data/README.md. The demo feed's labels are a second, independent check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.rules.engine import Document, Engine

DATA = Path(__file__).resolve().parents[1] / "data"
TARGET = 0.95


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)


def _score(engine: Engine, rows: list[dict[str, object]], flag: str) -> Score:
    score = Score()
    for row in rows:
        text = str(row["text"])
        tags = frozenset(row.get("channel_tags") or ())  # type: ignore[arg-type]
        verdict = engine.verdict(Document(text, row.get("channel_id"), None, tags))  # type: ignore[arg-type]
        got, want = getattr(verdict, flag), bool(row[flag])
        if got and want:
            score.tp += 1
        elif got or want:
            kind = "false positive" if got else "missed"
            score.fp += got
            score.fn += want
            score.misses.append(f"{kind} [{row['id']}] rules={verdict.rules}: {text[:160]!r}")
    return score


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    with (DATA / "rules_eval.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_evaluation_set_is_what_the_issue_asks_for(rows: list[dict[str, object]]) -> None:
    assert len(rows) >= 400
    negatives = [r for r in rows if not r["alert"] and not r["all_clear"]]
    assert len(negatives) * 3 >= len(rows)  # at least a third are (tricky) negatives
    assert sum(1 for r in rows if str(r["source"]).startswith("written")) < len(rows) / 2  # mostly real posts


@pytest.mark.parametrize("flag", ["alert", "all_clear"])
def test_default_pack_precision_and_recall(engine: Engine, rows: list[dict[str, object]], flag: str) -> None:
    score = _score(engine, rows, flag)
    report = "\n".join(score.misses)
    print(f"\n{flag}: precision {score.precision:.3f}, recall {score.recall:.3f} ({score.tp} found)\n{report}")
    assert score.precision >= TARGET, report
    assert score.recall >= TARGET, report


def test_demo_feed_verdicts(engine: Engine) -> None:
    labels = json.loads((DATA / "demo_labels.json").read_text(encoding="utf-8"))["posts"]
    texts: dict[tuple[int, int], str] = {}
    feed = Path(__file__).resolve().parents[2] / "bot" / "demo" / "feed.jsonl"
    for line in feed.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("type", "post") in ("post", "edit"):
            texts[(record["channel_id"], record["message_id"])] = record["text"]  # an edit's text is final
    wrong = []
    for label in labels:
        verdict = engine.verdict(Document(texts[(label["channel_id"], label["message_id"])]))
        want = label["category"] if label["expect"] != "none" else None
        if verdict.category != want:
            wrong.append(f"{label['message_id']}: want {want}, got {verdict.category} ({label['why']})")
    assert not wrong, "\n".join(wrong)
