"""Analyst commands, typed in the analyst chat: /status, /last, /search, /mute, /unmute, /rules, /channels, /help.

Only user ids in `ANALYST_USER_IDS` are answered (default: nobody); anyone else is ignored and
logged. The handler knows nothing of Telegram: it takes the text and the sender's id and returns
the HTML reply, so it is tested as it is; `telegram.py` wires it to the bot.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.alerts.format import category_mark, category_name, late_by, local_time
from bot.alerts.html import LIMIT, visible_length
from bot.alerts.policy import mute_target, parse_duration
from bot.errors import UserError
from bot.logging import get_logger

log = get_logger("tgmon.commands")

MAX_LAST = 20
HELP = """<b>tgmon commands</b>
/status — channels, last posts, lag, queues, recent errors
/last [N] [category] — the latest alerts (suppressed ones marked)
/search QUERY — posts with these words, any inflection
/mute TARGET DURATION — e.g. <code>/mute @kursk_gov 2h</code>, <code>/mute tag:news 1d</code>,
    <code>/mute category:uav 30m</code>, <code>/mute rule:drone-attack 1h</code>
/unmute TARGET — lift a mute
/rules — the rules in force
/channels — followed channels and their state
/help — this list"""


class ServiceView(Protocol):
    """What the commands may ask of the running service."""

    async def status(self) -> Mapping[str, Any]: ...

    async def last(self, count: int, category: str | None) -> list[Mapping[str, Any]]: ...

    async def search(self, query: str, limit: int) -> list[Mapping[str, Any]]: ...

    async def mute(self, target: str, until: datetime, by: int) -> None: ...

    async def unmute(self, target: str) -> bool: ...

    async def mutes(self) -> list[Mapping[str, Any]]: ...

    def rules(self) -> list[Mapping[str, Any]]: ...

    async def channels(self) -> list[Mapping[str, Any]]: ...


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _excerpt(item: Mapping[str, Any], chars: int = 90) -> str:
    """The start of a post's text, on one line, linked to the post when it has a link."""
    text = " ".join(str(item.get("text") or "").split())
    shown = _e(text[:chars] + ("…" if len(text) > chars else ""))
    link = item.get("link")
    return f'<a href="{_e(link)}">{shown}</a>' if link else shown


def _capped(lines: list[str], head: int, more: str) -> str:
    """Lines joined, cut to fit one Telegram message; `more` (with {n}) says how many were left out."""
    kept = lines[:head]
    used = visible_length("\n".join(kept))
    for index, line in enumerate(lines[head:], start=head):
        tail = more.format(n=len(lines) - index)
        if used + 1 + visible_length(line) + 1 + visible_length(tail) > LIMIT and index < len(lines) - 1:
            return "\n".join([*kept, tail])
        kept.append(line)
        used += 1 + visible_length(line)
    return "\n".join(kept)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    return late_by((now - datetime.fromisoformat(iso)).total_seconds()) + " ago"


class CommandHandler:
    def __init__(self, view: ServiceView, allowed: frozenset[int], tz: ZoneInfo) -> None:
        self.view = view
        self.allowed = allowed
        self.tz = tz
        self._commands: dict[str, Callable[[Sequence[str], int], Awaitable[str]]] = {
            "help": self._help,
            "start": self._help,
            "status": self._status,
            "last": self._last,
            "search": self._search,
            "mute": self._mute,
            "unmute": self._unmute,
            "rules": self._rules,
            "channels": self._channels,
        }

    async def handle(self, text: str, user_id: int | None, *, me: str | None = None) -> str | None:
        """The reply to a command, or None when it is not one, is another bot's, or the sender is not allowed.

        `me`: this bot's username; `/cmd@name` addressed to another bot in a shared chat is left alone.
        """
        if not text.startswith("/"):
            return None
        name, *more = text.split(None, 1)
        rest = more[0] if more else ""
        command, _, addressee = name[1:].partition("@")
        command = command.lower()
        if addressee and me is not None and addressee.lower() != me.lower():
            return None
        if user_id is None or user_id not in self.allowed:
            log.warning("command.denied", command=command, user_id=user_id, hint="add the id to ANALYST_USER_IDS")
            return None
        log.info("command.received", command=command, user_id=user_id)
        try:
            args = shlex.split(rest)
        except ValueError:
            args = rest.split()
        handler = self._commands.get(command)
        if handler is None:
            return f"Unknown command /{_e(command)}. /help lists them."
        try:
            reply: str = await handler(args, user_id)
        except UserError as exc:
            return "⚠️ " + _e("; ".join(exc.lines))
        return reply

    async def _help(self, args: Sequence[str], user_id: int) -> str:
        return HELP

    async def _status(self, args: Sequence[str], user_id: int) -> str:
        status = await self.view.status()
        now = datetime.now(UTC)
        lines = [
            "<b>tgmon status</b>",
            f"channels: {status['followed']} followed, {status['unavailable']} unavailable",
            f"live updates: last {_ago(status.get('last_update_at'), now)};"
            f" catch-up: last {_ago(status.get('last_sync_at'), now)}",
            f"queues: {status['queued_events']} events to store,"
            f" {status['pending_deliveries']} alert deliveries pending, {status['dead_letters']} dead-lettered",
            f"archive: {status['posts']} posts, {status['alerts']} alerts; search lag {status['search_lag']}",
            f"FloodWaits: {status['flood_waits']} ({round(status['flood_seconds'])} s)",
        ]
        channels = status.get("channels") or []
        if channels:
            lines.append("<b>last post per channel</b>")
            for channel in channels[:25]:
                lines.append(f"{_e(channel['name'])}: {_ago(channel.get('last_post'), now)}")
            if len(channels) > 25:
                lines.append(f"… and {len(channels) - 25} more (/channels)")
        problems = status.get("problems") or []
        if problems:
            lines.append("<b>recent problems</b>")
            for problem in problems[-5:]:
                lines.append(f"{_e(problem.get('timestamp', ''))[:19]} {_e(problem.get('event'))}")
        return "\n".join(lines)

    async def _last(self, args: Sequence[str], user_id: int) -> str:
        count, category = 5, None
        for arg in args:
            if arg.isdigit():
                count = min(max(int(arg), 1), MAX_LAST)
            else:
                category = arg.lower()
        alerts = await self.view.last(count, category)
        if not alerts:
            return "No alerts yet" + (f" in {_e(category)}." if category else ".")
        lines = [f"<b>last {_count(len(alerts), 'alert')}</b>" + (f" ({_e(category)})" if category else "")]
        for alert in alerts:
            held = f" <i>[{_e(alert['suppressed'])}]</i>" if alert.get("suppressed") else ""
            category = str(alert["category"])
            channel = alert.get("channel_title") or alert["channel_id"]
            lines.append(
                f"{category_mark(category)} <b>{_e(category_name(category))}</b>"
                f" {_e(local_time(alert.get('date'), self.tz))} · {_e(channel)}{held}: {_excerpt(alert)}"
            )
        return "\n".join(lines)

    async def _search(self, args: Sequence[str], user_id: int) -> str:
        if not args:
            raise UserError("usage: /search WORDS (each word in any of its forms)")
        query = " ".join(args)
        hits = await self.view.search(query, 10)
        if not hits:
            return f"Nothing found for {_e(query)}."
        lines = [f"<b>{_count(len(hits), 'post')}</b> for {_e(query)}"]
        for hit in hits:
            channel = hit.get("channel_title") or hit["channel_id"]
            lines.append(f"{_e(local_time(hit.get('date'), self.tz))} · {_e(channel)}: {_excerpt(hit)}")
        return "\n".join(lines)

    async def _mute(self, args: Sequence[str], user_id: int) -> str:
        if len(args) != 2:
            raise UserError("usage: /mute TARGET DURATION, e.g. /mute @kursk_gov 2h or /mute category:uav 30m")
        target = mute_target(args[0])
        try:
            duration = parse_duration(args[1])
        except ValueError as exc:
            raise UserError(f"duration: expected {exc}") from None
        until = datetime.now(UTC) + duration
        await self.view.mute(target, until, user_id)
        log.info("command.muted", target=target, until=until.isoformat(timespec="seconds"), user_id=user_id)
        return f"🔇 {_e(target)} muted until {_e(local_time(until.isoformat(), self.tz))}."

    async def _unmute(self, args: Sequence[str], user_id: int) -> str:
        if len(args) != 1:
            raise UserError("usage: /unmute TARGET")
        target = mute_target(args[0])
        if await self.view.unmute(target):
            return f"🔔 {_e(target)} unmuted."
        active = await self.view.mutes()
        listed = ", ".join(str(m["target"]) for m in active) or "none"
        return f"{_e(target)} was not muted (muted now: {_e(listed)})."

    async def _rules(self, args: Sequence[str], user_id: int) -> str:
        rules = self.view.rules()
        lines = [f"<b>{_count(len(rules), 'rule')}</b>"]
        for rule in rules:
            scope = f" [{_e(', '.join(rule['scope']))}]" if rule.get("scope") else ""
            lines.append(
                f"{category_mark(str(rule['category']))} <code>{_e(rule['id'])}</code> {_e(rule['severity'])}{scope}"
            )
        mutes = await self.view.mutes()
        if mutes:
            lines.append("<b>muted</b>")
            lines += [f"{_e(m['target'])} until {_e(local_time(str(m['until']), self.tz))}" for m in mutes]
        return "\n".join(lines)

    async def _channels(self, args: Sequence[str], user_id: int) -> str:
        channels = await self.view.channels()
        now = datetime.now(UTC)
        lines = [f"<b>{_count(len(channels), 'channel')}</b>"]
        for channel in channels:
            state = "✅" if channel.get("available", True) else f"⛔ {_e(channel.get('unavailable_reason') or '')}"
            tags = " ".join(f"#{_e(t)}" for t in channel.get("tags") or ())
            activity = f"{_count(int(channel.get('posts') or 0), 'post')}, last {_ago(channel.get('last_post'), now)}"
            lines.append(" ".join(part for part in (state, _e(channel["name"]), tags, "·", activity) if part))
        return _capped(lines, 1, "… and {n} more")
