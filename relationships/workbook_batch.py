"""Classify the account table of an .xlsx/.xlsm workbook and write a classified copy.

The copy is the user's workbook, untouched but for the result columns appended to the
classified table and two new sheets, Summary and Problems (see relationships.xlsxio for how
every other part stays byte-identical). Where that cannot be done without loss the workbook
is refused and ``results_only`` writes a separate results workbook instead.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relationships import xlsxio
from relationships.batch import MAP_REMEDY, FileReport, result_column_names, summarize
from relationships.engine import (
    CLIENT,
    CUSTOMER,
    RESULT_COLUMNS,
    classify_detailed,
    conversion_candidates,
    no_field_message,
)
from relationships.errors import InputError
from relationships.rulebook import Rulebook
from relationships.schema import map_columns

SCORE_BANDS = [
    (0, 9),
    (10, 19),
    (20, 29),
    (30, 39),
    (40, 49),
    (50, 59),
    (60, 69),
    (70, 79),
    (80, 89),
    (90, 100),
]
TOP_CANDIDATES = 10


def choose_table(
    wb: xlsxio.Workbook,
    rulebook: Rulebook,
    sheet: str | None,
    header_row: int | None,
    mapping: Mapping[str, str] | None,
) -> tuple[xlsxio.TableCandidate, str]:
    """The table to classify and a sentence saying why it was chosen."""
    candidates = wb.candidates(header_row)
    if sheet is not None:
        wanted = sheet.strip().lower()
        named = [
            c
            for c in candidates
            if (c.table_name or "").lower() == wanted or c.sheet_name.lower() == wanted
        ]
        if not named:
            tables = [c.table_name for c in candidates if c.table_name]
            found = ", ".join(f"'{n}'" for n in [*wb.sheet_names(), *tables]) or "none"
            raise InputError(
                f"{wb.path}: no sheet or Excel Table named {sheet!r} with a header row "
                f"(sheets and tables: {found})"
            )
        candidates = named
    scored = []
    for order, cand in enumerate(candidates):
        fields = set(map_columns(list(cand.headers), rulebook, _usable(mapping, cand)).fields)
        evidence = len(fields - {"account"})
        scored.append((evidence, cand.table_name is not None, cand.n_data_rows, -order, cand))
    if not scored or max(s[0] for s in scored) == 0:
        where = f"sheet {sheet!r}" if sheet else "any sheet"
        raise InputError(
            no_field_message(
                f"{wb.path}, {where}", f"pick the table with --sheet, --header-row or {MAP_REMEDY}"
            )
        )
    best = max(scored, key=lambda s: s[:4])
    cand = best[4]
    what = f"Excel Table '{cand.table_name}'" if cand.table_name else "range"
    why = (
        f"sheet '{cand.sheet_name}', {what} {cand.ref}: {best[0]} relationship columns "
        f"recognized (out of {len(candidates)} candidate table(s))"
    )
    return cand, why


def _usable(mapping: Mapping[str, str] | None, cand: xlsxio.TableCandidate) -> dict[str, str]:
    """The --map entries whose header this table has (others apply to other tables)."""
    if not mapping:
        return {}
    from relationships.rulebook import normalize_header

    present = {normalize_header(h) for h in cand.headers}
    return {h: f for h, f in mapping.items() if normalize_header(h) in present}


def classify_workbook(
    src: Path,
    dst: Path,
    rulebook: Rulebook,
    *,
    as_of: dt.date | str | None,
    mapping: Mapping[str, str] | None,
    sheet: str | None,
    header_row: int | None,
    force: bool,
    results_only: bool,
    report: FileReport,
) -> None:
    t0 = time.perf_counter()
    with xlsxio.Workbook.open(src) as wb:
        cand, why = choose_table(wb, rulebook, sheet, header_row, mapping)
        read = wb.read(cand)
        t1 = time.perf_counter()
        frame = read.frame
        result = classify_detailed(frame, rulebook, as_of=as_of, mapping=_usable(mapping, cand))
        t2 = time.perf_counter()
        letters = dict(zip(frame.columns, read.columns, strict=True))
        names = result_column_names(frame.columns)
        out = result.results.rename(columns=names)
        out, cleaned = _clean_control_chars(out)
        problems = _problem_rows(result.problems, cand.sheet_name, letters)
        problems += [
            [
                cand.sheet_name,
                f"{names[col]} (row {row})",
                col,
                "",
                "illegal control characters removed from the result text",
            ]
            for row, col in cleaned
        ]
        extra = [
            summary_sheet(result.results, frame, result.mapping.fields, cand),
            problems_sheet(problems),
        ]
        report.sheet, report.table, report.header_row = (
            cand.sheet_name,
            cand.table_name,
            cand.header_row,
        )
        report.notes.append(f"classified {why}")
        if read.blank_rows_skipped:
            report.notes.append(f"{read.blank_rows_skipped} blank rows inside the table skipped")
        if results_only:
            key = _key_column(frame, result.mapping.fields)
            results = pd.concat([frame[[key]], out], axis=1) if key is not None else out
            xlsxio.write_results_only(results, dst, extra, force=force)
        else:
            # refuses (LossyWorkbookError, naming --results-only) what it cannot copy safely
            xlsxio.write_classified(wb, cand, out, dst, extra, force=force)
        t3 = time.perf_counter()
    summarize(report, result)
    report.problems = [
        dict(zip(("sheet", "cell", "field", "value", "why"), p, strict=True)) for p in problems
    ]
    report.timings = {"read": t1 - t0, "classify": t2 - t1, "write": t3 - t2}


def _clean_control_chars(out: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[Any, str]]]:
    """Result texts quote user cells; XML cannot hold control characters, so drop them."""
    from relationships.batch import ILLEGAL_CHARS

    cleaned: list[tuple[Any, str]] = []
    for col in out.columns:
        series = out[col]
        if series.dtype != object:
            continue
        bad = series.map(lambda v: isinstance(v, str) and bool(ILLEGAL_CHARS.search(v)))
        if bad.any():
            out[col] = series.where(~bad, series[bad].str.replace(ILLEGAL_CHARS, "", regex=True))
            cleaned += [(row, col) for row in series.index[bad]]
    return out, cleaned


def _problem_rows(problems: pd.DataFrame, sheet: str, letters: Mapping[Any, str]) -> list[list]:
    return [
        [sheet, f"{letters.get(col, '?')}{row}", field, value, why]
        for row, col, field, value, why in problems.itertuples(index=False)
    ]


def _key_column(frame: pd.DataFrame, fields: Mapping[str, Any]) -> Any:
    if "account" in fields:
        return fields["account"]
    return frame.columns[0] if len(frame.columns) else None


def summary_sheet(
    results: pd.DataFrame,
    frame: pd.DataFrame,
    fields: Mapping[str, Any],
    cand: xlsxio.TableCandidate,
) -> xlsxio.NewSheet:
    """Counts by type and buyer type, the score distribution, the best conversion candidates."""
    types = results["relationship_type"].value_counts()
    buyers = results["buyer_type"].value_counts()
    total = len(results)
    rows: list[list[Any]] = [["Relationship type", "Accounts", "Share"]]
    for label in (CLIENT, CUSTOMER):
        count = int(types.get(label, 0))
        rows.append([label, count, round(count / total, 4) if total else 0])
    rows.append(["Total", total, 1 if total else 0])
    chart_rows = (2, 3)
    rows += [[], ["Buyer type", "Accounts", "Share"]]
    for label in ("Business", "Consumer", "Unknown"):
        count = int(buyers.get(label, 0))
        rows.append([label, count, round(count / total, 4) if total else 0])
    rows += [[], ["Client score", "Accounts", ""]]
    scores = results["client_score"].to_numpy()
    for lo, hi in SCORE_BANDS:
        rows.append([f"{lo}-{hi}", int(((scores >= lo) & (scores <= hi)).sum()), ""])
    rows += [
        [],
        [f"Top {TOP_CANDIDATES} conversion candidates (customers closest to client)", "", ""],
        ["Row", "Account", "Client score", "First tip"],
    ]
    key = _key_column(frame, fields)
    top = conversion_candidates(results, TOP_CANDIDATES)
    for row, score, first_tip in top.itertuples():
        account = frame.at[row, key] if key is not None else ""
        rows.append([row, "" if account is None else account, score, first_tip])
    rows += [
        [],
        [
            "Classified",
            f"sheet '{cand.sheet_name}' "
            + (f"Table '{cand.table_name}' " if cand.table_name else "")
            + cand.ref,
        ],
    ]
    chart = xlsxio.BarChart(
        title="Clients and customers",
        categories_ref=(1, chart_rows[0], chart_rows[1]),
        values_ref=(2, chart_rows[0], chart_rows[1]),
        anchor="F2",
    )
    return xlsxio.NewSheet("Summary", _plain(rows), col_widths=[44, 30, 14, 70], chart=chart)


def problems_sheet(problems: list[list]) -> xlsxio.NewSheet:
    rows = [["Sheet", "Cell", "Field", "Value", "Why"], *problems]
    if not problems:
        rows.append(["", "", "", "", "every value was readable"])
    return xlsxio.NewSheet("Problems", _plain(rows), col_widths=[18, 22, 22, 28, 70])


def _plain(rows: list[list[Any]]) -> list[list[Any]]:
    """Cells as plain Python values (numpy scalars and NaN made Excel-friendly)."""
    out = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and np.isnan(v):
                v = None
            cells.append(v)
        out.append(cells)
    return out


__all__ = ["RESULT_COLUMNS", "classify_workbook", "choose_table", "problems_sheet", "summary_sheet"]
