"""Shared fixtures: isolated environment, temporary data dirs, an opened store, the default rule engine."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bot.rules.engine import Engine
from bot.rules.loader import load_rules
from bot.store.sqlite import SQLiteStore, open_store
from tests.helpers import RULES_TOML, SHARED_DATA, stop_stray_sqlite_connections


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's environment, a ./.env, or another test's logging setup."""
    for name in list(os.environ):
        if name.startswith(("TGMON_", "TG_")):
            monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session", autouse=True)
def _no_stray_sqlite_threads() -> Iterator[None]:
    """A connection some code failed to close must not keep the test process from exiting."""
    yield
    stop_stray_sqlite_connections()


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """A data directory that does not exist yet (open_store creates it)."""
    return tmp_path / "data"


@pytest.fixture
async def store(tmp_data_dir: Path) -> AsyncIterator[SQLiteStore]:
    opened = await open_store(tmp_data_dir)
    try:
        yield opened
    finally:
        await close_store(opened)


async def close_store(store: SQLiteStore) -> None:
    """Close, failing the test with every task's stack if closing hangs, rather than hanging the suite."""
    closing = asyncio.ensure_future(store.close())
    for _ in range(30):  # a hang guard, not a speed check
        done, _ = await asyncio.wait({closing}, timeout=2)
        if done:
            closing.result()
            return
        # Known bug (tests/store/test_search.py::test_indexer_stops_when_cancelled_as_it_is_woken): the search
        # indexer can swallow close()'s cancel. Cancel it again so other tests are not held up by that bug.
        indexer = getattr(store, "_index_task", None)
        if isinstance(indexer, asyncio.Task) and not indexer.done():
            indexer.cancel()
    stacks = io.StringIO()
    for task in asyncio.all_tasks():
        print(task, file=stacks)
        task.print_stack(file=stacks)
    pytest.fail(f"store.close() did not return; tasks:\n{stacks.getvalue()}")


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The default rule pack (config/rules.toml), compiled once: pymorphy loading is slow."""
    return load_rules(RULES_TOML)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (it is laid beside the repository in CI only)")
    return SHARED_DATA


Logs = list[MutableMapping[str, Any]]


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Every structlog event, whatever level and renderer an earlier test configured."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)
