"""The ``living-review`` command line.

Each domain registers its commands from its own module (``services/cli/<domain>.py`` with a
``register(app)`` function); this module assembles them and turns known errors into one line.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

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


def main() -> None:
    """Console-script entry point: run the app, print CliError as one line, exit non-zero."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
