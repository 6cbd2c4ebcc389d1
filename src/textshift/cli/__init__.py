"""The ``textshift`` command: a thin Typer layer over the library.

Each command parses options, calls one library function and prints its result with Rich. Errors a user
can cause (:class:`~textshift.errors.TextshiftError`) become one line on stderr and exit code 2;
set ``TEXTSHIFT_TRACEBACK=1`` for the full traceback.

Every command is registered here, in :data:`COMMANDS` and :data:`DATA_COMMANDS`; the modules beside this one
define them (:mod:`~textshift.cli.common` holds what they share) and register nothing themselves.
"""

from __future__ import annotations

import os
import sys

import typer

from textshift.cli import data, grow, review, suggest, train, transfer
from textshift.cli.common import err_console, error_line, plain
from textshift.errors import TextshiftError

app = typer.Typer(name="textshift", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="Carry a trained text classifier over to a new domain, and measure whether it helped.\n\n"
                       "DATA arguments take a .csv, .tsv, .jsonl or .parquet file (also .tab, .ndjson, .pq; CSV, "
                       "TSV and JSON Lines may be .gz, .bz2 or .xz compressed) or an embedded dataset: "
                       "embedded:news, embedded:bills, embedded:bills-train, embedded:bills-test "
                       "(`textshift data list`).")
data_app = typer.Typer(no_args_is_help=True, help="List and export the embedded datasets.")

# (name, function) in the order `textshift --help` lists them; `data` is a group of its own.
COMMANDS = (
    ("train", train.train),
    ("predict", train.predict),
    ("evaluate", train.evaluate),
    ("info", train.info),
    ("transfer", transfer.transfer),
    ("compare", transfer.compare),
    ("demo", transfer.demo),
    ("inspect", review.inspect),
    ("review", review.review),
    ("grow", grow.grow),
    ("suggest", suggest.suggest),
    ("label", suggest.label),
)
DATA_COMMANDS = (
    ("list", data.data_list),
    ("export", data.data_export),
)



def _register(group: typer.Typer, commands: tuple) -> None:
    for name, command in commands:
        group.command(name=name)(command)


_register(app, COMMANDS)
_register(data_app, DATA_COMMANDS)
app.add_typer(data_app, name="data")


def main() -> None:
    """Entry point: run the app, mapping user errors to one line and exit code 2."""
    try:
        code = app(standalone_mode=False, prog_name="textshift")
        if isinstance(code, int) and code:  # typer returns 130 for Ctrl-C when not in standalone mode
            if code == 130:
                err_console.print("aborted")
            sys.exit(code)
    except TextshiftError as exc:
        if os.environ.get("TEXTSHIFT_TRACEBACK"):
            raise
        err_console.print(f"[red]error:[/] {plain(error_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors (unknown option, bad value, missing argument) of the click that typer uses: one line too.
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "textshift"
            message = " ".join(exc.format_message().split()).rstrip(".")
            err_console.print(f"[red]error:[/] {plain(message)}. See '{plain(command)} --help'", highlight=False,
                              soft_wrap=True)
            sys.exit(exc.exit_code)
        raise


__all__ = ["COMMANDS", "DATA_COMMANDS", "app", "data_app", "main"]
