"""Alerts through Apprise (`ALERT_APPRISE_URLS`, optional extra `pip install 'tgmon[apprise]'`): e-mail, Slack,
Matrix, ntfy and the other services Apprise knows, each by its URL.

Each URL is its own destination (`apprise:<scheme>:<hash8>`), so one failing service holds back only
its own alerts. The message is short text: category and severity as the title; channel, an excerpt
of the post and its link as the body. Apprise answering "not delivered" is retried with backoff
(Apprise does not tell a rejected message from an outage).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.alerts.format import category_mark
from bot.alerts.webhook import url_secrets
from bot.errors import ConfigError
from bot.logging import register_secrets

if TYPE_CHECKING:
    import apprise as apprise_lib

INSTALL_HINT = "pip install 'tgmon[apprise]'"
EXCERPT_CHARS = 300


class AppriseError(Exception):
    """Transient: Apprise could not deliver the message. Retried with backoff."""


def installed() -> bool:
    try:
        import apprise  # noqa: F401
    except ImportError:
        return False
    return True


def apprise_name(url: str) -> str:
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else "unknown"
    return f"apprise:{scheme}:{hashlib.blake2b(url.encode(), digest_size=4).hexdigest()}"


def alert_title(alert: Mapping[str, Any]) -> str:
    category = str(alert.get("category", "alert"))
    label = category.upper().replace("_", " ")
    channel = alert.get("channel_title") or alert.get("channel_username") or alert.get("channel_id")
    return f"{category_mark(category)} {label} ({alert.get('severity', '')}): {channel}"


def alert_body(alert: Mapping[str, Any]) -> str:
    """Plain text: channel line, a one-paragraph excerpt of the post, its link."""
    channel = str(alert.get("channel_title") or alert.get("channel_id"))
    if alert.get("channel_username"):
        channel += f" @{alert['channel_username']}"
    if alert.get("edited"):
        channel += " (edited)"
    lines = [f"{channel} · {alert.get('date', '')}"]
    text = " ".join(str(alert.get("text") or "").split())
    if text:
        lines.append(text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else ""))
    if alert.get("link"):
        lines.append(str(alert["link"]))
    return "\n".join(lines)


class AppriseNotifier:
    """One Apprise URL, one destination."""

    def __init__(self, url: str) -> None:
        try:
            import apprise
        except ImportError:
            raise ConfigError(f"ALERT_APPRISE_URLS needs the Apprise package: {INSTALL_HINT}") from None
        self.url = url.strip()
        self.name = apprise_name(self.url)
        register_secrets(url_secrets(self.url, self.name))
        self._apprise: apprise_lib.Apprise = apprise.Apprise()
        self._notify_type = apprise.NotifyType
        if not self._apprise.add(self.url):
            scheme = self.name.split(":")[1]
            raise ConfigError(
                f"ALERT_APPRISE_URLS: the {scheme}:// URL ({self.name}) is not one Apprise understands"
                " (see https://github.com/caronc/apprise/wiki)"
            )

    def __repr__(self) -> str:  # never the URL
        return f"AppriseNotifier({self.name!r})"

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        kind = self._notify_type.SUCCESS if alert.get("all_clear") else self._notify_type.WARNING
        delivered = await self._apprise.async_notify(body=alert_body(alert), title=alert_title(alert), notify_type=kind)
        if not delivered:
            raise AppriseError(f"{self.name}: not delivered (Apprise logs the reason)")
        return None

    async def close(self) -> None:
        self._apprise.clear()


def apprise_notifiers(urls: Sequence[str]) -> list[AppriseNotifier]:
    """One notifier per URL; a ConfigError naming the fix when the extra is not installed."""
    if urls and not installed():
        raise ConfigError(f"ALERT_APPRISE_URLS is set but the Apprise package is missing: {INSTALL_HINT}")
    return [AppriseNotifier(url) for url in urls]
