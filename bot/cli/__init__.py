"""The `tgmon` command (also `python -m bot`).

Every command takes --data-dir, --config-dir and --env-file. The commands live by subject:
`archive.py` (replay, demo, stats, search, export), `service.py` (run, login, check-config),
`channels.py` and `rules.py` (their sub-commands); `common.py` holds what they share.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot import __version__
from bot.cli import archive, channels, rules, service
from bot.cli.common import app, out

__all__ = ["app", "archive", "channels", "main", "rules", "service"]


def _version(value: bool) -> None:
    if value:
        out.print(f"tgmon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Archive public Telegram channels and alert analysts when posts talk about danger."""


def main() -> None:
    app()
