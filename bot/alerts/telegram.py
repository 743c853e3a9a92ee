"""Alerts as messages in an analyst chat, sent by the alert bot (TG_BOT_TOKEN) or the user account.

One notifier per chat (`ANALYST_CHAT_ID`, comma-separated), named `telegram:<chat id>` in the
deliveries table. It sends HTML (`html.py`), returns the sent message's id so the dispatcher can
record it (an alert marked sent is never sent again), replies with an all-clear to the alarm it
ends, edits a sent alert when more channels carried it, and digests late alerts.

Telegram's answers, sorted for the dispatcher: a FloodWait is `RetryAfter` its seconds; a chat the
bot cannot write to, or that does not exist, is permanent (dead-lettered, counted in `tgmon stats`:
fix the chat id or the bot's rights); everything else (network, server errors) is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from telethon import errors, events

from bot.alerts.commands import CommandHandler
from bot.alerts.html import render_html, render_html_digest
from bot.alerts.notifiers import PermanentError, RetryAfter
from bot.logging import get_logger

log = get_logger("tgmon.telegram_alerts")

T = TypeVar("T")

_NO_ACCESS = (  # the chat id is wrong, or the sender may not post there
    errors.ChatWriteForbiddenError,
    errors.ChatAdminRequiredError,
    errors.ChatIdInvalidError,
    errors.PeerIdInvalidError,
    errors.ChannelPrivateError,
    errors.ChannelInvalidError,
    errors.UserIsBlockedError,
    errors.InputUserDeactivatedError,
)
_PERMANENT = (
    *_NO_ACCESS,
    errors.MessageTooLongError,
    errors.EntitiesTooLongError,
    errors.BotMethodInvalidError,
)


class TelegramNotifier:
    def __init__(self, client: Any, chat_id: int, tz: ZoneInfo) -> None:
        self.client = client
        self.chat_id = chat_id
        self.tz = tz
        self.name = f"telegram:{chat_id}"

    async def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        try:
            return await action()
        except (errors.FloodWaitError, errors.FloodPremiumWaitError, errors.SlowModeWaitError) as exc:
            raise RetryAfter(exc.seconds, f"{type(exc).__name__}: wait {exc.seconds} s") from exc
        except _PERMANENT as exc:
            hint = (
                "; check ANALYST_CHAT_ID, and that the sender (the bot of TG_BOT_TOKEN, or the account) is a"
                " member allowed to post there"
                if isinstance(exc, _NO_ACCESS)
                else ""
            )
            raise PermanentError(f"chat {self.chat_id}: {type(exc).__name__}: {exc}{hint}") from exc
        except ValueError as exc:  # Telethon: an entity it cannot resolve (the bot never saw the chat)
            raise PermanentError(
                f"chat {self.chat_id}: {exc}; add the bot to the chat (or write to it once) and check ANALYST_CHAT_ID"
            ) from exc

    async def _post(self, html: str, reply_to: int | None = None) -> str:
        message = await self._call(
            lambda: self.client.send_message(
                self.chat_id, html, parse_mode="html", link_preview=False, reply_to=reply_to
            )
        )
        return str(message.id)

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        return await self._post(render_html(alert, self.tz))

    async def send_reply(self, alert: Mapping[str, Any], reply_to: str) -> str | None:
        """An all-clear under the alarm it ends; if that message is gone, as a message of its own."""
        try:
            return await self._post(render_html(alert, self.tz), reply_to=int(reply_to))
        except PermanentError:
            raise
        except (errors.MessageIdInvalidError, errors.MsgIdInvalidError):
            return await self.send(alert)
        except errors.RPCError as exc:
            # Errors Telethon has no class for keep Telegram's name in `message` (REPLY_MESSAGE_ID_INVALID…).
            if "REPLY" not in str(getattr(exc, "message", "") or "").upper():
                raise
            return await self.send(alert)

    async def send_digest(self, alerts: Sequence[Mapping[str, Any]]) -> str | None:
        return await self._post(render_html_digest(alerts, self.tz))

    async def edit(self, remote_id: str, alert: Mapping[str, Any]) -> None:
        try:
            await self._call(
                lambda: self.client.edit_message(
                    self.chat_id, int(remote_id), render_html(alert, self.tz), parse_mode="html", link_preview=False
                )
            )
        except errors.MessageNotModifiedError:
            return
        except (errors.MessageIdInvalidError, errors.MessageEditTimeExpiredError) as exc:
            raise PermanentError(f"chat {self.chat_id}: message {remote_id}: {type(exc).__name__}") from exc

    async def close(self) -> None:
        """The client belongs to the service (it also runs the analyst commands); it closes it."""


class CommandListener:
    """Analyst commands typed in the analyst chats, answered in place (see `commands.py`)."""

    def __init__(self, client: Any, chats: Sequence[int], handler: CommandHandler, username: str | None = None) -> None:
        """`username`: the sender's own (the bot's), so `/status@other_bot` is left to that bot."""
        self.client = client
        self.chats = list(chats)
        self.handler = handler
        self.username = username
        self._builder = events.NewMessage(chats=self.chats, pattern=r"^/")

    def start(self) -> None:
        self.client.add_event_handler(self._on_message, self._builder)

    def stop(self) -> None:
        self.client.remove_event_handler(self._on_message, self._builder)

    async def _on_message(self, event: Any) -> None:
        reply = await self.handler.handle(event.raw_text or "", event.sender_id, me=self.username)
        if reply is None:
            return
        try:
            await event.reply(reply, parse_mode="html", link_preview=False)
        except errors.RPCError as exc:
            log.warning("command.reply_failed", chat=event.chat_id, error=str(exc))
