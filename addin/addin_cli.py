"""`relationship addin install|status`: the classic xlwings add-in set-up, as CLI commands.

A thin edge over :mod:`addin.setup`: parse options, make one call, print the result, turn an
AddinError into `Error: ...` on stderr with exit code 1. Wired into the main app with
``register(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from addin import setup


def register(
    app: typer.Typer,
    *,
    platform: str | None = None,
    home: Path | None = None,
    runner: setup.Runner | None = None,
) -> None:
    """Add the `addin` sub-app; platform, home and runner are for tests (default: this machine)."""
    addin_app = typer.Typer(
        help="Set up the classic xlwings add-in so Excel loads the Relationships functions.",
        no_args_is_help=True,
    )
    run = runner or setup.run_command

    @addin_app.command("install")
    def install(
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
        ] = False,
    ) -> None:
        """Install the xlwings add-in and point it at the Relationships functions.

        Runs 'xlwings addin install', then sets UDF MODULES, INTERPRETER_WIN/_MAC and
        PYTHONPATH in xlwings.conf (other entries are kept; the old file is backed up).

        Example: relationship addin install
        """
        try:
            report = setup.install(platform=platform, home=home, runner=run, dry_run=dry_run)
        except setup.AddinError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
        if report.dry_run:
            typer.echo("Dry run: would run 'xlwings addin install' and set:")
        elif report.addin_output:
            typer.echo(report.addin_output)
        for line in report.lines():
            typer.echo(line)
        if not report.dry_run:
            typer.echo("Next, in Excel:")
            for n, step in enumerate(setup.next_steps(report.platform), 1):
                typer.echo(f"  {n}. {step}")

    @addin_app.command("status")
    def status() -> None:
        """Show the add-in set-up: config entries, module import, xlwings version, add-in file.

        Exits 1 when something is missing.

        Example: relationship addin status
        """
        result = setup.status(platform=platform, home=home, runner=run)
        for line in result.lines():
            typer.echo(line)
        if result.problems():
            raise typer.Exit(1)

    app.add_typer(addin_app, name="addin")
