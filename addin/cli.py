"""The `relationship` command line: a thin edge over the relationships package.

Each command parses its options, makes one library call and turns the library's
exceptions into `Error: ...` on stderr with a non-zero exit (2 for bad usage).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from addin.addin_cli import register as register_addin
from relationships import __version__
from relationships.errors import RelationshipError
from workbook_templates.templates_cli import register as register_templates

app = typer.Typer(
    name="relationship",
    help="Tell clients from customers in your account lists, explain why, and suggest how to "
    "turn customers into clients.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(help="Export, check and inspect rulebooks.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
register_templates(app)
register_addin(app)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"Error: {message}", markup=False)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"relationship {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Tell clients from customers in your account lists."""


# ------------------------------------------------------------------------------ rules
@rules_app.command("export")
def rules_export(
    output: Annotated[Path, typer.Argument(help="Where to write: .xlsx (a Rules sheet) or .json.")],
    rules: Annotated[
        Path | None, typer.Option(help="Rulebook to export (default: built-in).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Write the active rulebook as an editable sheet.

    Example: relationship rules export my-rules.xlsx
    """
    from relationships.rulebook import export_rulebook, load_rulebook

    if output.exists() and not force:
        raise fail(f"{output}: exists already (use --force to replace it)")
    try:
        export_rulebook(load_rulebook(rules), output)
    except RelationshipError as exc:
        raise fail(str(exc)) from None
    out.print(f"Wrote {output}", markup=False)


@rules_app.command("check")
def rules_check(
    rulebook: Annotated[Path, typer.Argument(help="A rulebook: .toml, .json, .xlsx or .xlsm.")],
) -> None:
    """Validate a rulebook; exit 1 with the first problem named.

    Example: relationship rules check my-rules.xlsx
    """
    from relationships.rulebook import load_rulebook

    try:
        rb = load_rulebook(rulebook)
    except RelationshipError as exc:
        raise fail(str(exc)) from None
    out.print(
        f"{rulebook}: OK ({len(rb.signals)} signals, {len(rb.fields)} fields, {len(rb.tips)} tips)",
        markup=False,
    )


# ------------------------------------------------------------------------------ classify
@app.command()
def classify(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Files (.csv, .parquet, .xlsx, .xlsm), folders or globs.", metavar="INPUT..."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output file (one input only). For big inputs and --engine dask: "
            ".csv, .parquet, or any other name for a folder of Parquet parts.",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Folder for the outputs.")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet or Excel Table to classify.")] = None,
    header_row: Annotated[int | None, typer.Option(help="Row number of the header row.")] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="Map a header to a field: --map 'Sector=business_type' (repeatable)."
        ),
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Rulebook file (default: built-in).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date for tenure from 'customer since' (YYYY-MM-DD, default today)."
        ),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write a JSON report here.")] = None,
    force: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    results_only: Annotated[
        bool,
        typer.Option("--results-only", help="Write a separate results workbook instead of a copy."),
    ] = False,
    engine: Annotated[
        Literal["pandas", "dask"],
        typer.Option(
            help="pandas: this machine (CSV/Parquet inputs over 256 MiB stream in chunks); "
            "dask: a Dask cluster (pip install 'relationship-addin[dask]')."
        ),
    ] = "pandas",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: local)."),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option("--chunk-rows", min=1, help="Rows per chunk or partition of a big input."),
    ] = None,
) -> None:
    """Classify every row of CSV files and workbooks; write results beside each input.

    Examples:
      relationship classify accounts.csv --out accounts.classified.csv
      relationship classify book.xlsx --sheet Accounts --as-of 2026-01-31
      relationship classify exports/ --out-dir classified/ --report run.json
      relationship classify crm-export/ --engine dask --out classified/
    """
    from relationships.batch import classify_files
    from relationships.engine import _as_date

    mapping: dict[str, str] = {}
    for item in map_ or []:
        header, sep, fname = item.rpartition("=")
        if not sep or not header.strip() or not fname.strip():
            raise fail(f"--map {item!r}: use --map 'Header=field'", 2)
        mapping[header.strip()] = fname.strip()
    if output and out_dir:
        raise fail("use --out or --out-dir, not both", 2)
    if header_row is not None and header_row < 1:
        raise fail(f"--header-row {header_row}: must be 1 or more", 2)
    try:
        as_of_date = _as_date(as_of) if as_of else None
        if rules is not None:
            from relationships.rulebook import load_rulebook

            rulebook = load_rulebook(rules)
        else:
            rulebook = None
        from addin.progress import file_progress, row_progress
        from relationships import scale

        if scale.wants_scale_path(
            inputs, engine=engine, scheduler=scheduler, chunk_rows=chunk_rows
        ):
            if sheet or header_row is not None or results_only:
                raise fail(
                    "--sheet, --header-row and --results-only are for workbooks; "
                    "big CSV/Parquet inputs and --engine dask take none of them",
                    2,
                )
            with row_progress(out) as progress:
                result = scale.run_scale(
                    inputs,
                    output,
                    out_dir=out_dir,
                    engine=engine,
                    scheduler=scheduler,
                    rules=rulebook,
                    as_of=as_of_date,
                    mapping=mapping or None,
                    force=force,
                    chunk_rows=chunk_rows,
                    progress=progress,
                )
        else:
            with file_progress(out, inputs) as progress:
                result = classify_files(
                    inputs,
                    out=output,
                    out_dir=out_dir,
                    rules=rulebook,
                    as_of=as_of_date,
                    mapping=mapping or None,
                    sheet=sheet,
                    header_row=header_row,
                    force=force,
                    results_only=results_only,
                    progress=progress,
                )
    except RelationshipError as exc:
        raise fail(str(exc), 2) from None
    if not result.files:
        raise fail("no input files found", 2)
    _print_batch(result)
    if report:
        result.write_json(report)
        out.print(f"Report: {report}", markup=False)
    if not result.ok:
        raise typer.Exit(1)


def _print_batch(result) -> None:
    table = Table(title="Classified", show_lines=False)
    for col in ("file", "result", "rows", "clients", "customers", "problems", "output / reason"):
        table.add_column(col, overflow="fold")
    for f in result.files:
        table.add_row(
            Path(f.input).name,
            f.verdict,
            str(f.rows),
            str(f.counts.get("Client", 0)),
            str(f.counts.get("Customer", 0)),
            str(len(f.problems)),
            f.output if f.ok else f.reason,
        )
    out.print(table)
    for f in result.files:
        if f.ok and f.mapping:
            pairs = ", ".join(f"{h} -> {fld}" for h, fld in f.mapping.items())
            where = f" sheet '{f.sheet}'" if f.sheet else ""
            out.print(f"{Path(f.input).name}{where}: {pairs}", markup=False)
        for note in f.notes:
            out.print(f"  note: {note}", markup=False)
    for f in result.files:
        if not f.ok:
            err.print(f"Error: {f.reason}", markup=False)


# ------------------------------------------------------------------------------ demo
@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder the demo writes to.")] = Path(
        "demo-output"
    ),
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date for tenure from 'customer since' (YYYY-MM-DD, default today)."
        ),
    ] = None,
) -> None:
    """Run the main job on the bundled sample workbook of 500 accounts.

    Classifies the sample with the batch tool, builds the planning templates, writes
    everything to --out-dir (its files are replaced on each run) and prints a summary.

    Example: relationship demo --out-dir demo-output
    """
    from addin.demo import run_demo, top_candidates
    from relationships.engine import _as_date

    try:
        with out.status("Classifying the sample accounts and building the templates..."):
            result = run_demo(out_dir, as_of=_as_date(as_of) if as_of else None)
    except (RelationshipError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    rep = result.report
    out.print(f"Sample: {result.sample}", markup=False)
    out.print(f"Classified {rep.rows} accounts (sheet '{rep.sheet}').", markup=False)
    counts = Table(title="Relationships")
    for col in ("type", "accounts", "", "buyer type", "accounts "):
        counts.add_column(col)
    types = [("Client", rep.counts.get("Client", 0)), ("Customer", rep.counts.get("Customer", 0))]
    buyers = [(b, rep.buyer_counts.get(b, 0)) for b in ("Business", "Consumer", "Unknown")]
    for i in range(3):
        t = types[i] if i < len(types) else ("", "")
        counts.add_row(t[0], str(t[1]), "", buyers[i][0], str(buyers[i][1]))
    out.print(counts)
    top = Table(title="Ten best conversion candidates (customers closest to client)")
    for col in ("row", "account", "score", "first tip"):
        top.add_column(col, overflow="fold")
    for row in top_candidates(result.results).itertuples(index=False):
        top.add_row(str(row[0]), str(row[1]), str(row[2]), str(row[3]))
    out.print(top)
    out.print(
        f"Problems found: {len(rep.problems)} unreadable values (each listed on the "
        "Problems sheet), for example:",
        markup=False,
    )
    for p in rep.problems[:5]:
        out.print(f"  {p['cell']}: {p['field']} {p['value']!r} {p['why']}", markup=False)
    out.print("Files:", markup=False)
    out.print(f"  classified workbook  {rep.output}", markup=False)
    for path in result.templates:
        out.print(f"  template             {path}", markup=False)


def run() -> None:  # pragma: no cover - console entry for `python -m addin.cli`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    run()
