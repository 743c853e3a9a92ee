"""Alerts as Telegram HTML: what an analyst reads in the alert chat.

Telegram accepts a small HTML subset and limits a message to 4,096 UTF-16 code units of the text left
after parsing, and to 100 formatting entities (the rest are silently dropped). So everything that
comes from a channel is escaped, the message aims at `LIMIT` visible units, and only the post text is
cut to fit: the header, the links and the notes around it always show.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from html import escape
from itertools import accumulate
from typing import Any, cast
from zoneinfo import ZoneInfo

from telethon.extensions import html as telethon_html
from telethon.helpers import add_surrogate

from bot.alerts.format import (
    category_mark,
    category_name,
    excerpt_window,
    late_by,
    local_time,
    media_summary,
    merge_spans,
    places_summary,
)
from bot.models import post_link

LIMIT = 4000  # visible UTF-16 units: Telegram refuses more than 4,096
MAX_ENTITIES = 100  # Telegram ignores formatting after a message's 100th entity
MAX_SOURCES = 10  # "Also in" channels listed by name; the rest are counted
TITLE_CHARS = 128  # Telegram's own limit on a channel title: a longer one is not a real title
DIGEST_TEXT_CHARS = 100
SEVERITY_MARKS = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "⚪"}
_LOOKBACK = 40  # how far back from the limit a cut looks for a space
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Cc except \t and \n
_LINKABLE = re.compile(r"(?:https?|tg)://[^\s\"'<>\\]+")  # what Telegram takes as a link's address
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")  # zero-width joiner, text and emoji variation selectors


def render_html(alert: Mapping[str, Any], tz: ZoneInfo) -> str:
    """One alert as one message: header, channel and time, the post with its matches in bold, notes, link."""
    link = alert.get("link")
    head = [_header(alert), _channel_line(alert, tz)]
    if alert.get("places"):
        head.append(f"📍 {escape(places_summary(alert['places']), quote=True)}")
    if alert.get("all_clear") and alert.get("clears"):
        head.append(_clears_line(alert, tz))
    if alert.get("forward_from"):
        head.append(f"↪️ Forwarded from {escape(_one_line(str(alert['forward_from'])), quote=True)}")
    tail = []
    if alert.get("media"):
        tail.append(f"📎 {escape(media_summary(alert['media']), quote=True)}")
    if len(alert.get("sources") or ()) > 1:
        tail.append(_sources_line(alert["sources"][1:]))
    if alert.get("late_s") is not None:
        tail.append(f"🕓 read {late_by(float(alert['late_s']))} after posting (catch-up)")
    if float(alert.get("delayed_s") or 0) >= 60:
        tail.append(f"⏳ delivered {late_by(float(alert['delayed_s']))} late")
    if _linkable(link):
        tail.append(_link(link, "Open post"))
    text, spans = _clean_post(str(alert.get("text") or ""), alert.get("matches") or ())
    if not text:
        return "\n".join(head + tail)
    units, entities = _measure("\n".join(head + tail))
    # The post costs a line break and a blockquote entity beyond its own text.
    quote = _quote(text, spans, LIMIT - units - 1, MAX_ENTITIES - entities - 1)
    return "\n".join([*head, quote, *tail])


def render_html_sources(alert: Mapping[str, Any], tz: ZoneInfo) -> str:
    """The text a sent alert is edited to when more channels carry the post: the alert rendered afresh.

    Rendering the whole alert again (rather than patching the sent HTML) keeps one layout and one cut;
    only the "Also in" line differs. Pass the `delayed_s` of the original delivery, not of the edit, or
    the message will start saying it was delivered late.
    """
    return render_html(alert, tz)


def render_html_digest(alerts: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> str:
    """Late alerts (read while catching up after an outage) as one message: a line each, oldest first.

    Lines that would not fit the length or entity limits are counted in a last "… and K more" line.
    """
    lates = [float(a.get("late_s") or 0) for a in alerts]
    earliest, latest = late_by(min(lates, default=0)), late_by(max(lates, default=0))
    spread = earliest if earliest == latest else f"{earliest} to {latest}"
    noun = "late alert" if len(alerts) == 1 else "late alerts"
    lines = [f"🕓 <b>{len(alerts)} {noun}</b>, read while catching up, {spread} after posting"]
    units, entities = _measure(lines[0])
    for index, alert in enumerate(alerts):
        line = _digest_line(alert, tz)
        line_units, line_entities = _measure(line)
        rest = len(alerts) - index - 1
        reserve = 1 + _units(_more(rest)) if rest else 0
        if units + 1 + line_units + reserve > LIMIT or entities + line_entities > MAX_ENTITIES:
            lines.append(_more(rest + 1))
            break
        lines.append(line)
        units += 1 + line_units
        entities += line_entities
    return "\n".join(lines)


def visible_length(html: str) -> int:
    """UTF-16 code units of the text Telegram shows for `html`, which is what its length limit counts.

    Measured with Telethon's own HTML parser: that parse is exactly what Telethon sends.
    """
    return _measure(html)[0]


def _measure(html: str) -> tuple[int, int]:
    """(visible UTF-16 units, formatting entities) of `html` as Telethon parses it."""
    text, entities = telethon_html.parse(html)
    return _units(text), len(entities)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _header(alert: Mapping[str, Any]) -> str:
    category = str(alert["category"])
    if alert.get("all_clear"):
        return f"✅ <b>{escape(category_name(category), quote=True)}</b>"
    severity = str(alert.get("severity") or "")
    marked = f"{SEVERITY_MARKS[severity]} {severity}" if severity in SEVERITY_MARKS else severity
    title = f"{category_mark(category)} <b>{escape(category_name(category), quote=True)}</b>"
    return f"{title} · {escape(marked, quote=True)}" if marked else title


def _channel_line(alert: Mapping[str, Any], tz: ZoneInfo) -> str:
    """The channel linked to the post, the post's local time, the channel's tags as hashtags to tap."""
    parts = [_link(alert.get("link"), escape(_title(alert), quote=True))]
    if alert.get("date"):
        parts.append(local_time(str(alert["date"]), tz))
    tags = [re.sub(r"\W+", "_", str(tag)).strip("_") for tag in alert.get("channel_tags") or ()]
    if any(tags):
        parts.append(" ".join(f"#{escape(tag, quote=True)}" for tag in tags if tag))
    line = " · ".join(parts)
    return line + " (edited)" if alert.get("edited") else line


def _clears_line(alert: Mapping[str, Any], tz: ZoneInfo) -> str:
    """Which alarm an all-clear ends, linked to its post (same channel) so the analyst can check."""
    ended = alert["clears"]
    category = str(ended.get("category") or "alert")
    message_id = ended.get("message_id")
    link = post_link(int(alert["channel_id"]), alert.get("channel_username"), int(message_id)) if message_id else None
    label = f"{category_mark(category)} {escape(category_name(category), quote=True)}"
    when = f" of {local_time(str(ended['date']), tz)}" if ended.get("date") else ""
    return f"Ends the {_link(link, label)} alert{when}"


def _sources_line(others: Sequence[Mapping[str, Any]]) -> str:
    names = [_link(s.get("link"), escape(_title(s), quote=True)) for s in others[:MAX_SOURCES]]
    more = f" and {len(others) - MAX_SOURCES} more" if len(others) > MAX_SOURCES else ""
    return f"🔁 Also in: {', '.join(names)}{more}"


def _digest_line(alert: Mapping[str, Any], tz: ZoneInfo) -> str:
    """Mark, category, time, channel and the start of the text, which links to the post: one entity."""
    category = str(alert["category"])
    mark = "✅" if alert.get("all_clear") else category_mark(category)
    words = " ".join(_CONTROL.sub("", str(alert.get("text") or "")).split())
    label = _clip(words, DIGEST_TEXT_CHARS) or media_summary(alert.get("media") or ()) or "post"
    when = local_time(alert.get("date"), tz)
    head = " · ".join(part for part in (f"{mark} {category_name(category)}", when, _title(alert)) if part)
    return f"{escape(head, quote=True)}: {_link(alert.get('link'), escape(label, quote=True))}"


def _more(count: int) -> str:
    return f"… and {count} more"


def _title(item: Mapping[str, Any]) -> str:
    """A channel's title on one line, and no longer than Telegram allows one to be."""
    return _clip(_one_line(str(item.get("channel_title") or item.get("channel_id") or "?")), TITLE_CHARS)


def _one_line(text: str) -> str:
    return " ".join(_CONTROL.sub("", text).split())


def _linkable(href: object) -> bool:
    return isinstance(href, str) and _LINKABLE.fullmatch(href) is not None


def _link(href: object, label: str) -> str:
    """`label` (HTML) linked to `href` when that is a web or tg:// address; anything else stays text."""
    if not _linkable(href):
        return label
    return f'<a href="{escape(str(href), quote=True)}">{label}</a>'


def _clean_post(text: str, matches: Sequence[Mapping[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The post without control characters or surrounding blank space, and its matched spans in it.

    Match offsets index the stored text, so they are moved along with whatever is removed before them.
    """
    removed = [m.start() for m in _CONTROL.finditer(text)]
    cleaned = _CONTROL.sub("", text)
    stripped = cleaned.strip()
    lead = len(cleaned) - len(cleaned.lstrip())

    def moved(offset: int) -> int:
        offset = min(max(offset, 0), len(text))
        return min(max(offset - bisect_left(removed, offset) - lead, 0), len(stripped))

    spans = [(moved(int(m["start"])), moved(int(m["end"]))) for m in matches]
    return stripped, merge_spans([(s, e) for s, e in spans if s < e])


def _quote(text: str, spans: list[tuple[int, int]], budget: int, max_bold: int) -> str:
    """The post in a blockquote, cut to `budget` visible units around its first match if it must be."""
    start, end = _excerpt(text, spans, budget)
    out = ["…" if start else ""]
    cursor = start
    for s, e in spans[: max(max_bold, 0)]:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        out += [escape(text[cursor:s], quote=True), f"<b>{escape(text[s:e], quote=True)}</b>"]
        cursor = e
    out += [escape(text[cursor:end], quote=True), "…" if end < len(text) else ""]
    return f"<blockquote>{''.join(out)}</blockquote>"


def _excerpt(text: str, spans: list[tuple[int, int]], budget: int) -> tuple[int, int]:
    """(start, end) of the part of `text` shown: all of it, or a window fitting `budget` with its ellipses.

    The window is `excerpt_window`'s, reckoned in UTF-16 units; its ends then move inwards to a space
    nearby if there is one, never into a match after the first, nor between a character and an accent
    or emoji part that modifies it.
    """
    offsets = list(accumulate((2 if ord(c) > 0xFFFF else 1 for c in text), initial=0))
    if offsets[-1] <= budget:
        return 0, len(text)
    # excerpt_window needs only the text's length, in the same units as the spans and the limit.
    wide = cast(str, add_surrogate(text))
    low, high = excerpt_window(wide, [(offsets[s], offsets[e]) for s, e in spans], max(budget - 2, 0))
    start, end = bisect_left(offsets, low), bisect_right(offsets, high) - 1
    first = min(spans[0][0], end) if spans else start
    starts = [s for s, _ in spans]

    def cuttable(at: int) -> bool:
        i = bisect_right(starts, at) - 1
        return not (i >= 0 and spans[i][0] < at < spans[i][1]) and not _joins(text, at)

    if start > 0:
        start = _start_cut(text, start, first)
    end = _end_cut(text, end, max(first + 1, start + 1), cuttable)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _start_cut(text: str, start: int, first: int) -> int:
    """Move a window's start forward to just after a space, or at least off a joining character."""
    candidates = range(start, first + 1)
    near = candidates[:_LOOKBACK]
    return next(
        (at for at in near if text[at - 1].isspace() and not text[at].isspace() and not _joins(text, at)),
        next((at for at in candidates if not _joins(text, at)), start),
    )


def _end_cut(text: str, end: int, lowest: int, cuttable: Callable[[int], bool]) -> int:
    """Move a cut back to just before a space nearby, else to the nearest place it can fall, else leave it."""
    if end >= len(text):
        return end
    candidates = range(end, lowest - 1, -1)
    near = candidates[: _LOOKBACK + 1]
    return next(
        (at for at in near if text[at].isspace() and not text[at - 1].isspace() and cuttable(at)),
        next((at for at in candidates if cuttable(at)), end),
    )


def _clip(text: str, limit: int) -> str:
    """`text` in at most `limit` characters plus "…", cut like a post is."""
    if len(text) <= limit:
        return text
    return text[: _end_cut(text, limit, 1, lambda at: not _joins(text, at))].rstrip() + "…"


def _joins(text: str, at: int) -> bool:
    """Whether cutting before `text[at]` would split what reads as one character.

    An accent or vowel mark (Arabic, Hebrew), an emoji's skin tone, variation selector or zero-width
    joiner, a flag's second letter or a subdivision flag's tag characters belong to what precedes them.
    """
    if at <= 0 or at >= len(text):
        return False
    char, before = text[at], text[at - 1]
    if char in _JOINERS or before == "\u200d" or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return True
    if "\U0001f3fb" <= char <= "\U0001f3ff" or "\U000e0020" <= char <= "\U000e007f":
        return True
    if not (_regional(char) and _regional(before)):
        return False
    run = 0
    while at - run > 0 and _regional(text[at - run - 1]):
        run += 1
    return run % 2 == 1


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"
