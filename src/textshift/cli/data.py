"""``textshift data list`` and ``textshift data export``: the embedded datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textshift.cli.common import Overwrite, console, plain


def data_list() -> None:
    """List the embedded datasets."""
    from textshift.data import EMBEDDED, EMBEDDED_PROVENANCE

    table = Table(title="embedded datasets (use as embedded:NAME)")
    table.add_column("name")
    table.add_column("description")
    for spec in EMBEDDED.values():
        table.add_row(plain(spec.name), plain(spec.description))
    console.print(table)
    console.print(plain(EMBEDDED_PROVENANCE))


def data_export(
    name: Annotated[str, typer.Argument(help="news, bills, bills-train, bills-test or topics.")],
    destination: Annotated[Path, typer.Argument(help="File or folder to write to.")] = Path("."),
    overwrite: Overwrite = False,
) -> None:
    """Copy an embedded dataset to a file, to look at or to use as a template.

    Example: textshift data export bills-train bills_train.csv
    """
    from textshift.data import export_embedded

    path = export_embedded(name, destination, overwrite=overwrite)
    console.print(f"wrote {plain(path)}")
