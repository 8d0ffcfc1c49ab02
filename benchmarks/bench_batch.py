"""Batch speed and memory: `relationship classify` on generated workbooks vs. a naive script.

Run by hand:  .venv/bin/python benchmarks/bench_batch.py [--rows 100000 1000000]

For each size it writes a workbook of realistic account data (12 columns, an Excel Table)
and times, each in a fresh process (so peak memory is its own):

* ours: relationships.batch.classify_file, end to end (read, classify, write a classified copy);
* naive: what an analyst would write: pandas.read_excel (openpyxl), a row-wise apply that
  classifies one row at a time (with the engine's fastest row call, classify_rows, so the
  comparison flatters the naive script), and DataFrame.to_excel (openpyxl).

Targets (issue #4): at least 10x faster than the naive script at 100,000 rows; 1,000,000 rows
under 3 GB peak memory. The naive script runs only up to --naive-max rows (it takes tens of
minutes beyond).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import generate, peak_mb  # noqa: E402


def write_workbook(rows: int, path: Path) -> None:
    """A workbook with one Excel Table of generated accounts (write-only openpyxl: fast)."""
    import warnings

    from openpyxl import Workbook
    from openpyxl.worksheet.table import Table

    warnings.filterwarnings("ignore", message="In write-only mode", category=UserWarning)

    frame = generate(rows).drop(columns=["Referrals"])  # 12 columns
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Accounts")
    ws.append(list(frame.columns))
    for record in frame.itertuples(index=False):
        ws.append([None if v == "" else v for v in record])
    last = chr(ord("A") + len(frame.columns) - 1)
    table = Table(displayName="Accounts", ref=f"A1:{last}{rows + 1}")
    table._initialise_columns()  # write-only mode: name the table columns ourselves
    for column, header in zip(table.tableColumns, frame.columns, strict=True):
        column.name = header
    ws.add_table(table)
    wb.save(path)


def child(mode: str, src: str, dst: str) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "ours":
        from relationships.batch import classify_file

        report = classify_file(src, out=dst, as_of="2026-11-22", force=True)
        assert report.ok, report.reason
    else:
        import pandas as pd

        from relationships.engine import classify_rows

        frame = pd.read_excel(src, engine="openpyxl")
        headers = list(frame.columns)
        results = frame.apply(
            lambda row: pd.Series(classify_rows(headers, [list(row)], as_of="2026-11-22")[0]),
            axis=1,
        )
        pd.concat([frame, results], axis=1).to_excel(dst, engine="openpyxl", index=False)
    print(
        json.dumps(
            {
                "wall": time.perf_counter() - t0,
                "cpu": time.process_time() - c0,
                "peak_mb": peak_mb(),
            }
        )
    )


def run(mode: str, src: Path, dst: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(src), str(dst)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--naive-max", type=int, default=100_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(
        f"machine: {platform.platform()}, {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        "| rows | workbook MB | ours wall / CPU (s) | ours peak MB | naive wall / CPU (s) | "
        "naive peak MB | speed-up (wall) |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            src = Path(tmp) / f"accounts-{rows}.xlsx"
            write_workbook(rows, src)
            ours = run("ours", src, Path(tmp) / f"ours-{rows}.xlsx")
            naive = None
            if rows <= args.naive_max:
                naive = run("naive", src, Path(tmp) / f"naive-{rows}.xlsx")
            size = src.stat().st_size / 2**20
            naive_cols = (
                f"{naive['wall']:.1f} / {naive['cpu']:.1f} | {naive['peak_mb']:.0f} | "
                f"{naive['wall'] / ours['wall']:.1f}x"
                if naive
                else "not run | | "
            )
            print(
                f"| {rows:,} | {size:.1f} | {ours['wall']:.1f} / {ours['cpu']:.1f} | "
                f"{ours['peak_mb']:.0f} | {naive_cols} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
