"""How an alert reads: category marks, highlighted matches, media summaries, excerpts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text

CATEGORY_MARKS = {
    "air_raid": "🚨",
    "missile": "🚀",
    "uav": "🛩",
    "shelling": "💥",
    "evacuation": "🏃",
    "incursion": "⚔️",
    "all_clear": "✅",
}
SEVERITY_STYLES = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "bold yellow",
    "low": "cyan",
}
_MEDIA_NAMES = {
    "photo": ("photo", "photos"),
    "video": ("video", "videos"),
    "round_video": ("round video", "round videos"),
    "voice": ("voice note", "voice notes"),
    "audio": ("audio", "audio files"),
    "document": ("document", "documents"),
    "sticker": ("sticker", "stickers"),
    "animation": ("GIF", "GIFs"),
    "web_page": ("link preview", "link previews"),
    "poll": ("poll", "polls"),
    "geo": ("location", "locations"),
    "contact": ("contact", "contacts"),
}
EXCERPT_CHARS = 320
MAX_PLACES = 6  # places listed in an alert; the rest are counted


def category_mark(category: str) -> str:
    return CATEGORY_MARKS.get(category, "⚠️")


def category_name(category: str) -> str:
    """ "all_clear" → "ALL CLEAR": how a category heads an alert."""
    return category.upper().replace("_", " ")


def _duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def media_summary(media: Sequence[Mapping[str, Any]]) -> str:
    """ "2 photos, video 0:35": counts per kind; a single timed item shows its duration."""
    counts: dict[str, list[Mapping[str, Any]]] = {}
    for item in media:
        counts.setdefault(str(item.get("kind", "other")), []).append(item)
    parts = []
    for kind, items in counts.items():
        singular, plural = _MEDIA_NAMES.get(kind, ("attachment", "attachments"))
        if len(items) == 1:
            duration = items[0].get("duration")
            parts.append(f"{singular} {_duration(duration)}" if duration else singular)
        else:
            parts.append(f"{len(items)} {plural}")
    return ", ".join(parts)


def places_summary(places: Sequence[Mapping[str, Any]], limit: int = MAX_PLACES) -> str:
    """ "Обухів, Київська область (from east) · Київ (2, towards)": each place with its oblast, then what
    the post says of it; the first `limit`, and how many more."""
    parts = []
    for place in places[:limit]:
        name = str(place.get("name") or "?")
        oblast = place.get("oblast")
        label = f"{name}, {oblast}" if oblast and oblast != name else name
        notes = [str(place[key]) for key in ("count", "direction") if place.get(key) is not None]
        parts.append(f"{label} ({', '.join(notes)})" if notes else label)
    more = f" and {len(places) - limit} more" if len(places) > limit else ""
    return " · ".join(parts) + more


def merge_spans(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def excerpt_window(text: str, spans: Sequence[tuple[int, int]], limit: int) -> tuple[int, int]:
    """A window of at most `limit` characters, starting a little before the first match."""
    if len(text) <= limit:
        return 0, len(text)
    first = min((s for s, _ in spans), default=0)
    start = max(0, min(first - limit // 4, len(text) - limit))
    return start, start + limit


def local_time(iso: str | None, tz: ZoneInfo) -> str:
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone(tz)
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()}"


def render_console(alert: Mapping[str, Any], tz: ZoneInfo) -> Text:
    """Header line (mark, category, severity, time, channel), highlighted excerpt, link and media."""
    category = str(alert["category"])
    severity = str(alert["severity"])
    style = "bold green" if alert.get("all_clear") else SEVERITY_STYLES.get(severity, "bold")
    out = Text()
    out.append(f"{category_mark(category)} {category_name(category)}", style=style)
    out.append(f" · {severity} · {local_time(alert.get('date'), tz)} · ", style="dim")
    channel = alert.get("channel_title") or str(alert.get("channel_id"))
    out.append(str(channel), style="bold")
    if alert.get("channel_username"):
        out.append(f" @{alert['channel_username']}", style="dim")
    if alert.get("edited"):
        out.append(" (edited)", style="dim")
    text = str(alert.get("text") or "")
    spans = merge_spans([(int(m["start"]), int(m["end"])) for m in alert.get("matches", [])])
    start, end = excerpt_window(text, spans, EXCERPT_CHARS)
    out.append("\n  " + ("…" if start else ""))
    cursor = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(_indented(text[cursor:s]))
        out.append(_indented(text[s:e]), style="bold reverse")
        cursor = e
    out.append(_indented(text[cursor:end]) + ("…" if end < len(text) else ""))
    if alert.get("places"):
        out.append(f"\n  📍 {places_summary(alert['places'])}")
    footer = [str(alert["link"])] if alert.get("link") else []
    if alert.get("forward_from"):
        footer.append(f"forwarded from {alert['forward_from']}")
    if alert.get("media"):
        footer.append(media_summary(alert["media"]))
    footer.append("rules: " + ", ".join(alert.get("rules", [])))
    out.append("\n  " + " · ".join(footer) + "\n", style="dim")
    return out


def _indented(segment: str) -> str:
    return segment.replace("\n", "\n  ")


def late_by(seconds: float) -> str:
    """ "3 h 05 min", "12 min", "40 s": how long after the post an alert came."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    hours, minutes = divmod(total // 60, 60)
    return f"{hours} h {minutes:02} min" if hours else f"{minutes} min"


def render_digest(alerts: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> Text:
    """Late alerts (caught up after an outage) as one block: a line each, oldest first, with links."""
    lates = [float(a.get("late_s") or 0) for a in alerts] or [0.0]
    out = Text()
    out.append(f"🕓 {len(alerts)} late alerts", style="bold yellow")
    spread = f"{late_by(min(lates))} to {late_by(max(lates))}"
    out.append(f" · read while catching up, {spread} after posting\n", style="dim")
    for alert in alerts:
        category = str(alert["category"])
        channel = alert.get("channel_title") or str(alert.get("channel_id"))
        text = " ".join(str(alert.get("text") or "").split())
        out.append(f"  {category_mark(category)} {category_name(category)}", style="bold")
        out.append(f" · {local_time(alert.get('date'), tz)} · {channel}: ", style="dim")
        out.append(text[:120] + ("…" if len(text) > 120 else ""))
        if alert.get("link"):
            out.append(f" {alert['link']}", style="dim")
        out.append("\n")
    return out
