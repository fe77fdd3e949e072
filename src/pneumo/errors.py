"""Errors that speak to the user: what went wrong, where, and what to do next."""

from __future__ import annotations


class PneumoError(Exception):
    """An error the CLI reports without a traceback.

    ``hint`` says what the user can do about it; the CLI prints it on its own line.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class DataError(PneumoError):
    """Input data is missing, malformed or inconsistent."""


class ConfigError(PneumoError):
    """A configuration file or override is invalid."""


class ChecksumError(PneumoError):
    """A downloaded file does not match its published size or checksum."""
