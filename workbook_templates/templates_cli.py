"""The ``relationship templates`` command: write the planning templates.

``register(app)`` adds the command to a Typer app (addin/cli.py wires it in); like every
command it parses options, makes one library call (:func:`build_all`) and turns the
library's exceptions into ``Error: ...`` on stderr with exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relationships.errors import RelationshipError


def templates(
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder to write the templates into.")
    ] = Path("."),
    rules: Annotated[
        Path | None,
        typer.Option(help="Rulebook (.toml, .json or an exported .xlsx; default: built-in)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace templates that exist already.")] = False,
) -> None:
    """Write the planning templates: account classifier, strategy plan, conversion tracker.

    Drop-downs come from the rulebook's vocabularies; the classifier carries the rulebook
    as its Rules sheet and classifies with plain formulas (and with the add-in's functions).

    Example: relationship templates --out-dir planning
    """
    from workbook_templates.api import build_all

    try:
        paths = build_all(out_dir, rules, force=force)
    except RelationshipError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in paths:
        typer.echo(f"Wrote {path}")


def register(app: typer.Typer) -> None:
    """Add the ``templates`` command to a Typer app."""
    app.command("templates")(templates)
