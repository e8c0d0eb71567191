"""The ``living-review`` command line.

Each domain registers its commands from its own module (``services/cli/<domain>.py`` with a
``register(app)`` function); this module assembles them and turns known errors into one line:
usage errors (a missing argument, an unknown option or command, a value of the wrong type)
print ``error: …`` and exit 2; failures (:class:`CliError`) print ``error: …`` and exit 1.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, NoReturn

import typer
from typer._click import exceptions as click_errors  # typer's own copy of click
from typer.main import get_command

from services.cli.errors import CliError

app = typer.Typer(
    name="living-review",
    help="Keep a systematic review current: harvest PubMed, pre-screen, pool, notify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; each defines register(app: typer.Typer) -> None.
_COMMAND_MODULES: tuple[str, ...] = ("harvest", "workers", "extraction", "meta", "web", "evidence")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"services.cli.{name}")
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: run the command, exit 0; on bad usage print one ``error:``
    line and exit 2; on a failure (CliError, an aborted prompt) one line and exit 1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = get_command(app)
    _plain_flags(command)
    try:
        result = command.main(
            sys.argv[1:] if argv is None else argv, prog_name="living-review", standalone_mode=False
        )
    except click_errors.NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        sys.exit(2)
    except click_errors.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        _fail(f"{_one_line(exc.format_message())}{hint}", 2)
    except click_errors.ClickException as exc:
        _fail(_one_line(exc.format_message()), exc.exit_code or 1)
    except CliError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    sys.exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain_flags(command: Any) -> None:
    """Show boolean flags as plain flags in help (typer labels them ``<bool>``, which reads as if
    they took a value)."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
