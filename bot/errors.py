"""Errors a user can fix: each carries one line naming the place and the fix; the CLI exits 2 on them."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the operator: config, files, arguments. Never a traceback."""

    exit_code = 2

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class ConfigError(UserError):
    """A config or environment problem; one line per problem."""


class StoreError(UserError):
    """The database is missing, locked, corrupt or from a newer tgmon."""
