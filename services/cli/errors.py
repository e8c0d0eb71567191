"""Errors raised by CLI commands: one clear line for the user, exit code 1."""


class CliError(Exception):
    """A user-facing failure: the message names what to fix; printed as ``error: <message>``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
