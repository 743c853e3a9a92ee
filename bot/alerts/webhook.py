"""Alerts to an HTTP endpoint (`ALERT_WEBHOOK_URL`): one JSON `POST` per alert, for Slack relays, SIEMs, scripts.

The body is the alert object, as in `alerts.jsonl`; `Idempotency-Key` is the alert's id, so a receiver
can drop the copy it gets when an answer was lost and the alert is sent again (delivery is
at-least-once). What the answer means to the dispatcher:

- 2xx: delivered (the value of `X-Request-Id`, `Request-Id` or `X-Message-Id`, if any, is kept);
- 429: `RetryAfter`, the wait its `Retry-After` asks for (seconds or an HTTP date; 30 s when missing
  or unreadable, at most an hour);
- 5xx, 408, connection errors and timeouts: a plain exception, retried with backoff;
- any other status (other 4xx, a 3xx redirect): `PermanentError`, the alert is dead-lettered.

Webhook URLs often carry a token in their path or query (Slack, Discord, Teams): the destination name
shows the host and the path with token-like segments masked, never the userinfo or the query, and
the secret parts are registered with the log redaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from bot import __version__
from bot.alerts.notifiers import PermanentError, RetryAfter
from bot.logging import register_secrets

DEFAULT_TIMEOUT_S = 10.0
RETRY_AFTER_DEFAULT_S = 30.0
RETRY_AFTER_CAP_S = 3600.0
_EXCERPT_CHARS = 200
_REMOTE_ID_HEADERS = ("x-request-id", "request-id", "x-message-id")
_MASK = "***"
_WORDY = re.compile(r"[A-Za-z0-9._~-]+")

# httpx logs every request with its full URL at INFO: the token in a webhook path along with it.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class WebhookError(Exception):
    """Transient: the endpoint failed (5xx), timed out or could not be reached. Retried with backoff."""


def looks_secret(segment: str) -> bool:
    """A path segment that may be a token: long, or a mix of letters and digits, or not a plain word.

    Kept: `hook`, `api`, `v1`, `alerts`, `tgmon-events`, `12345`. Masked: Slack's `T0123ABCD`, Discord's
    18-digit id and token, UUIDs, base64.
    """
    if not segment:
        return False
    if len(segment) >= 16 or not _WORDY.fullmatch(segment):
        return True
    letters = any(c.isalpha() for c in segment)
    digits = sum(c.isdigit() for c in segment)
    if letters and digits:
        return digits >= 3 or len(segment) >= 8
    return digits >= 9


def url_secrets(url: str, shown: str = "") -> list[str]:
    """The parts of a URL that must never reach a log line: all of it, what follows `scheme://`, its userinfo,
    query and token-like path segments; none that `shown` (the destination name, logged on purpose) contains.
    """
    url = url.strip()
    parts = urlsplit(url)
    found = [url, url.split("://", 1)[-1]]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    if parts.username and parts.password is None:
        found.append(parts.username)  # a bare userinfo is usually a token (https://TOKEN@host/)
    if parts.query:
        found.append(parts.query)
        found += [value for _, _, value in (p.partition("=") for p in parts.query.split("&")) if len(value) >= 6]
    if parts.fragment:
        found.append(parts.fragment)
    found += [segment for segment in parts.path.split("/") if looks_secret(segment)]
    return list(dict.fromkeys(s for s in found if len(s) >= 4 and s not in shown))


def webhook_name(url: str) -> str:
    """`webhook:<host>[:port]<path>`, token-like path segments masked; a hash of the whole URL when anything was hidden.

    Stable across restarts (it keys the delivery rows), distinct for distinct URLs, free of credentials.
    """
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    segments = parts.path.split("/")
    shown = "/".join(_MASK if looks_secret(segment) else segment for segment in segments)
    hidden = shown != parts.path or bool(parts.username or parts.password or parts.query or parts.fragment)
    name = f"webhook:{host}{shown}"
    if hidden:
        name += "~" + hashlib.blake2b(url.encode(), digest_size=4).hexdigest()
    return name


def check_url(url: str) -> str | None:
    """What is wrong with a webhook URL, or None; never echoes the URL (it may carry a token)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"has scheme {parts.scheme!r}, not http or https" if parts.scheme else "has no http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; 30 s if missing or unreadable; at most 1 h."""
    if value is None or not value.strip():
        return RETRY_AFTER_DEFAULT_S
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return RETRY_AFTER_DEFAULT_S
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if seconds != seconds or seconds < 0:  # NaN, or a negative delay
        return RETRY_AFTER_DEFAULT_S
    return min(seconds, RETRY_AFTER_CAP_S)


class WebhookNotifier:
    """One webhook URL; one pooled `httpx.AsyncClient`, closed by `close()` (a client passed in is left open)."""

    def __init__(
        self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S, client: httpx.AsyncClient | None = None
    ) -> None:
        problem = check_url(url)
        if problem is not None:
            raise ValueError(f"webhook URL {problem}")
        self.url = url.strip()
        self.name = webhook_name(self.url)
        self.timeout = timeout
        self._secrets = url_secrets(self.url, self.name)
        register_secrets(self._secrets)
        self._client = client
        self._owns_client = client is None

    def __repr__(self) -> str:  # never the URL
        return f"WebhookNotifier({self.name!r})"

    def _scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        body = orjson.dumps(alert if isinstance(alert, dict) else dict(alert))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(alert["id"]),
            "User-Agent": f"tgmon/{__version__}",
        }
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._http().post(self.url, content=body, headers=headers)
        except TimeoutError:
            raise WebhookError(f"{self.name}: no answer within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            detail = self._scrub(str(exc))
            raise WebhookError(f"{self.name}: {type(exc).__name__}" + (f": {detail}" if detail else "")) from None
        return self._outcome(response)

    def _outcome(self, response: httpx.Response) -> str | None:
        status = response.status_code
        if 200 <= status < 300:
            for header in _REMOTE_ID_HEADERS:
                value: str | None = response.headers.get(header)
                if value:
                    return value[:200]
            return None
        if status == 429:
            seconds = retry_after_seconds(response.headers.get("retry-after"))
            raise RetryAfter(seconds, f"{self.name}: HTTP 429, retry after {seconds:g} s")
        excerpt = self._excerpt(response)
        if status >= 500 or status == 408:
            raise WebhookError(f"{self.name}: HTTP {status}" + (f": {excerpt}" if excerpt else ""))
        if 300 <= status < 400:
            raise PermanentError(
                f"{self.name}: HTTP {status} redirect: set ALERT_WEBHOOK_URL to the address it redirects to"
            )
        raise PermanentError(f"{self.name}: HTTP {status}" + (f": {excerpt}" if excerpt else ""))

    def _excerpt(self, response: httpx.Response) -> str:
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            return ""
        short = " ".join(text[: _EXCERPT_CHARS * 2].split())
        if len(short) > _EXCERPT_CHARS:
            short = short[:_EXCERPT_CHARS] + "…"
        return self._scrub(short)

    async def close(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
