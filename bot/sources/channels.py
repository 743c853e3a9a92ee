"""Which channels to follow, and how to reach them without asking Telegram twice.

A configured channel is resolved once: its id and access hash are kept in the store, and from then
on it is reached as an `InputPeerChannel` built from them, with no request at all. Resolving
@usernames again and again is what earns accounts hour-long FloodWaits. A renamed channel keeps its
id, so its history stays its own. A channel that is private, deleted, or whose username no longer
exists is marked unavailable with the reason, and the others carry on.

Joining: Telegram pushes live updates of a channel only to its members, so by default tgmon joins
what it follows (`join = false` on a channel reads it by polling only, at the poll interval).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from telethon import errors
from telethon.tl import functions, types

from bot.logging import get_logger
from bot.models import Channel
from bot.settings import ChannelConfig, Channels
from bot.sources.limits import ChannelGone, Pacer, Requests, unavailable_reason
from bot.sources.tl import channel_of
from bot.store import ChannelRecord, WriteTx

log = get_logger("tgmon.channels")

RESOLVE_PACE_S = 1.0  # between requests that resolve or join: 500 channels take ten minutes, once


@dataclass(slots=True)
class Followed:
    """A channel tgmon reads: how to address it, and what it knows of it."""

    config: ChannelConfig | None
    peer: Any  # types.InputPeerChannel
    channel: Channel
    joined: bool
    entity: Any = None  # the types.Channel Telegram last sent (kept for recordings)

    @property
    def id(self) -> int:
        return int(self.channel.id)

    @property
    def label(self) -> str:
        return f"@{self.channel.username}" if self.channel.username else str(self.channel.id)


Write = Callable[[Callable[[WriteTx], None]], Awaitable[None]]
BULK = 100  # channels per channels.getChannels request


class ChannelRegistry:
    """Resolves the configured channels into `Followed` ones, through the store's cache.

    Cached channels are checked in bulk (one request per 100: new titles and usernames, whether the
    account is still a member, which ones went private); only channels never seen are resolved one
    by one, paced.
    """

    def __init__(
        self,
        client: Any,
        channels: Channels,
        records: list[ChannelRecord],
        write: Write,
        *,
        requests: Requests | None = None,
    ) -> None:
        self.client = client
        self.channels = channels
        self.write = write
        self.request = requests or Requests(Pacer(RESOLVE_PACE_S))
        self._by_id = {r.id: r for r in records}
        self._by_username = {
            name.lower(): r for r in records for name in (*r.aliases, *([r.username] if r.username else []))
        }
        self.followed: dict[int, Followed] = {}
        self.unavailable: dict[str, str] = {}

    def cached(self, config: ChannelConfig) -> ChannelRecord | None:
        record = self._by_id.get(config.id) if config.id is not None else None
        if record is None and config.username:
            record = self._by_username.get(config.username.lower())
        return record if record is not None and record.access_hash is not None else None

    async def resolve_all(self, *, join: bool = True) -> dict[int, Followed]:
        known = [(config, record) for config in self.channels.items if (record := self.cached(config)) is not None]
        for start in range(0, len(known), BULK):
            await self._check(known[start : start + BULK])
        for config in self.channels.items:
            if self.cached(config) is None:
                await self.resolve(config)
        for followed in list(self.followed.values()) if join else ():
            if followed.config is not None and followed.config.join and not followed.joined:
                followed.joined = await self._join(followed)
        log.info("channels.ready", followed=len(self.followed), unavailable=len(self.unavailable))
        return self.followed

    async def _check(self, known: list[tuple[ChannelConfig, ChannelRecord]]) -> None:
        """Cached channels, as Telegram sees them now; a request failing for one is retried one by one."""
        request = functions.channels.GetChannelsRequest(
            [types.InputChannel(record.id, record.access_hash) for _, record in known]
        )
        try:
            result = await self.request("channels", f"{len(known)} channels", partial(self.client, request))
        except (ChannelGone, errors.RPCError) as exc:
            if len(known) > 1:
                for one in known:
                    await self._check([one])
                return
            config, record = known[0]
            cause = exc.cause if isinstance(exc, ChannelGone) else exc
            if isinstance(cause, errors.ChannelInvalidError) and config.username:
                # Access hashes belong to an account: after logging in with another one, the stored
                # hash is refused. Resolve the channel again, once, by its name.
                log.info("channels.access_hash_refused", channel=_label(config), action="resolving again")
                await self.resolve(config)
            else:
                await self._unavailable(config, _label(config), unavailable_reason(cause), record)
            return
        chats = {chat.id: chat for chat in result.chats}
        for config, record in known:
            chat = chats.get(record.id)
            label = _label(config)
            if isinstance(chat, types.Channel):
                await self._follow(config, chat, record)
            elif isinstance(chat, types.ChannelForbidden):
                await self._unavailable(config, label, "private, or the account was banned from it", record)
            else:
                await self._unavailable(config, label, "no longer exists", record)

    async def resolve(self, config: ChannelConfig) -> Followed | None:
        """A channel not seen before: one request (by @username, or by id if the account knows it)."""
        label = _label(config)
        ref: Any = config.username if config.username else types.PeerChannel(config.id or 0)
        try:
            entity = await self.request("resolve", label, partial(self.client.get_entity, ref))
        except ChannelGone as exc:
            await self._unavailable(config, label, exc.reason)
            return None
        except (ValueError, TypeError) as exc:
            await self._unavailable(config, label, unavailable_reason(exc))
            return None
        if isinstance(entity, types.ChannelForbidden):
            await self._unavailable(config, label, "private, or the account was banned from it")
            return None
        if not isinstance(entity, types.Channel):
            await self._unavailable(config, label, f"not a channel but a {type(entity).__name__.lower()}")
            return None
        log.info("channels.resolved", channel=label, id=entity.id, title=entity.title)
        return await self._follow(config, entity, None)

    async def _follow(self, config: ChannelConfig, entity: Any, record: ChannelRecord | None) -> Followed:
        channel = channel_of(entity, entity.id)
        peer = types.InputPeerChannel(entity.id, entity.access_hash)
        followed = Followed(config, peer, channel, not entity.left, entity)
        aliases = tuple(dict.fromkeys(n.lower() for n in (config.username, channel.username) if n))
        fresh = ChannelRecord(entity.id, channel.username, channel.title, entity.access_hash, aliases=aliases)
        stored = (record.username, record.title, record.available, record.access_hash) if record else None
        stored_aliases = {a.lower() for a in record.aliases} if record else set()
        if stored != (fresh.username, fresh.title, True, fresh.access_hash) or not set(aliases) <= stored_aliases:
            if record is not None and record.username != fresh.username:
                log.info("channels.renamed", id=entity.id, old=record.username, new=fresh.username)
            await self.write(lambda tx: tx.save_channel(fresh))
            self._by_id[fresh.id] = fresh
            for alias in aliases:
                self._by_username[alias] = fresh
        self.followed[followed.id] = followed
        self.unavailable.pop(_label(config), None)
        return followed

    async def gone(self, followed: Followed, reason: str) -> None:
        """A followed channel went private or away: stop following it, keep its history."""
        self.followed.pop(followed.id, None)
        record = ChannelRecord(followed.id, followed.channel.username, followed.channel.title, None, False, reason)
        self.unavailable[followed.label] = reason
        log.error("channels.unavailable", channel=followed.label, reason=reason)
        await self.write(lambda tx: tx.save_channel(record))

    async def _unavailable(
        self, config: ChannelConfig, label: str, reason: str, record: ChannelRecord | None = None
    ) -> None:
        self.unavailable[label] = reason
        log.error("channels.unavailable", channel=label, reason=reason)
        channel_id = record.id if record is not None else config.id
        if channel_id is not None:
            username = record.username if record is not None else config.username
            title = record.title if record is not None else config.title
            gone = ChannelRecord(channel_id, username, title, None, False, reason)
            await self.write(lambda tx: tx.save_channel(gone))

    async def _join(self, followed: Followed) -> bool:
        channel = types.InputChannel(followed.peer.channel_id, followed.peer.access_hash)
        try:
            await self.request(
                "join", followed.label, partial(self.client, functions.channels.JoinChannelRequest(channel))
            )
        except errors.UserAlreadyParticipantError:
            return True
        except (ChannelGone, errors.RPCError) as exc:
            log.warning(
                "channels.join_failed", channel=followed.label, error=str(exc), consequence="read by polling only"
            )
            return False
        log.info("channels.joined", channel=followed.label)
        return True


def _label(config: ChannelConfig) -> str:
    return f"@{config.username}" if config.username else str(config.id)
