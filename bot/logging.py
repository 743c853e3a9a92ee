"""structlog setup: JSON lines for machines, readable lines on a terminal, secrets never printed.

Telethon and other libraries log through the standard library; their records pass through the same
renderer and the same redaction, so one stream tells the whole story.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter, deque
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(r"api_hash|session|token|password|phone|secret|authorization", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w+])\+\d[\d \-()]{8,16}\d")  # +7 999 123-45-67, +7 (999) 123-45-67
_BOT_TOKEN = re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b")
_secrets: set[str] = set()
_PROBLEMS: deque[dict[str, Any]] = deque(maxlen=20)
_ERRORS: Counter[str] = Counter()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so they are masked wherever they appear in a log line."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _BOT_TOKEN.sub(REDACTED, text)
    return _PHONE.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        masked_dict: dict[Any, Any] = {}
        for key, item in value.items():  # keys too: a dict may be keyed by a secret, such as a webhook URL
            masked_dict[redact_text(key) if isinstance(key, str) else key] = (
                REDACTED if _SENSITIVE_KEY.search(str(key)) else _redact_value(item)
            )
        return masked_dict
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Any other object (an exception, bytes) is rendered from its repr: masked if that would show a secret.
    text = repr(value)
    masked = redact_text(text)
    return value if masked == text else masked


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys, registered secrets, bot tokens and phone numbers."""
    for key, value in list(event.items()):
        if _SENSITIVE_KEY.search(key) and value is not None:
            event[key] = REDACTED
        else:
            event[key] = _redact_value(value)
    return event


def remember_problems(_: Any, level: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the last warnings and errors, already redacted, for `/status`."""
    if level in ("warning", "error", "critical", "exception"):
        _PROBLEMS.append(dict(event))
        if level != "warning":
            _ERRORS[str(event.get("event"))] += 1
    return event


def recent_problems() -> list[dict[str, Any]]:
    return list(_PROBLEMS)


def error_counts() -> dict[str, int]:
    """Errors logged since the start, by event name: for the metrics."""
    return dict(_ERRORS)


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Logs go to stderr so stdout stays clean for command output (`stats --json`, `export`)."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text here, so `redact` masks them: the console renderer's own (rich) traceback
        # would be drawn after redaction, exception message and frame locals included.
        structlog.processors.format_exc_info,
        redact,
        remember_problems,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("telethon", "aiosqlite", "asyncio", "pymorphy3"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
