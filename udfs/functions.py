"""The Excel functions: thin xlwings UDFs over :mod:`relationships.engine`.

One module for both runtimes, unchanged: the classic xlwings add-in on Windows (config
``UDF MODULES = udfs.functions``) and Office.js custom functions through xlwings Server or
xlwings Lite. Each function is a decorator stack over a one-line body; the shared helpers
below turn Excel's cells into rows (:mod:`udfs.convert`), call the engine and turn its
results, or its errors, back into cells. No rule lives here.

Speed, for the common fill-down of one formula per row:

* range arguments use xlwings' ``raw`` converter and are cleaned here in one pass;
* one row goes to ``engine.classify_rows`` (pure Python, cached per distinct cell value);
  its result is memoized, so the neighbouring CLIENT_SCORE, RELATIONSHIP_REASONS, ...
  formulas of the same row cost a dictionary look-up;
* many rows go to ``classify_rows`` up to :data:`ROWS_PATH_LIMIT`, then to the vectorized
  ``engine.classify``, asked for the one column the function shows (both give identical
  results; RELATIONSHIP_TYPE over many rows builds no reasons or tips);
* a ``rules`` range is parsed and validated once per distinct content.
"""

# No ``from __future__ import annotations`` here: xlwings' Office.js dispatch calls
# typing.get_type_hints on the function at every call, and string annotations are then
# compiled anew each time (~0.15 ms a call).
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from itertools import count
from typing import Any

import numpy as np
import pandas as pd
import xlwings as xw

from relationships import engine
from relationships.errors import InputError, RelationshipError, RulebookError
from relationships.rulebook import (
    Rulebook,
    default_rulebook,
    rulebook_from_rows,
    rulebook_to_rows,
)
from udfs import convert

logger = logging.getLogger(__name__)

CATEGORY = "Relationships"
RESULT_COLUMNS = engine.RESULT_COLUMNS
# Up to this many rows per call go to classify_rows, more to classify (pandas). Measured
# (benchmarks/bench_udfs.py machine, 2026-11-22, one result column): classify costs ~5 ms a
# call plus ~4 us a row; classify_rows ~0.05 ms a row it has seen, ~0.5 ms a new one.
ROWS_PATH_LIMIT = 20
RULES_CACHE_SIZE = 8  # distinct custom rulebooks kept parsed
ROW_CACHE_SIZE = 20_000  # single-row results kept (about 0.4 kB each; cleared when full)
LABEL_CACHE_SIZE = 256  # distinct header rows kept as texts

ROWS_DOC = (
    "One account row (A2:M2, Accounts[@]) or many rows (one result per row). "
    "Without headers, the first row is the header row."
)
HEADERS_DOC = "Optional header row of rows, e.g. A$1:M$1 or Accounts[#Headers]."
RULES_DOC = (
    "Optional range holding a rulebook sheet as 'relationship rules export' writes it "
    "(default: the built-in rulebook)."
)
MAX_TIPS_DOC = "Optional number of tips to show (default: the rulebook's max_tips, 3)."
TABLE_DOC = "A table with its header row first, e.g. A1:M500 or Accounts[#All]."
BUSINESS_DOC = "A business-type text such as Law firm, or a range of them (one result per cell)."

# Every function returns a 2D list of plain values (str, int, float), which both runtimes
# take as is (``@xw.ret("raw")``: no per-cell cleaning of 10,000-row results).
Cells = list[list[Any]]


# ------------------------------------------------------------------------------ functions
@xw.func(category=CATEGORY)
@xw.arg("rows", "raw", doc=ROWS_DOC)
@xw.arg("headers", "raw", doc=HEADERS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def RELATIONSHIP_TYPE(rows: Any, headers: Any = None, rules: Any = None) -> Cells:
    """Client or Customer for each account row."""
    return _per_row("relationship_type", rows, headers, rules)


@xw.func(category=CATEGORY)
@xw.arg("rows", "raw", doc=ROWS_DOC)
@xw.arg("headers", "raw", doc=HEADERS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def CLIENT_SCORE(rows: Any, headers: Any = None, rules: Any = None) -> Cells:
    """Client score 0-100 for each account row (Client from the rulebook's threshold, 50)."""
    return _per_row("client_score", rows, headers, rules)


@xw.func(category=CATEGORY)
@xw.arg("rows", "raw", doc=ROWS_DOC)
@xw.arg("headers", "raw", doc=HEADERS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def RELATIONSHIP_REASONS(rows: Any, headers: Any = None, rules: Any = None) -> Cells:
    """The signals that decided each row's verdict, in plain words."""
    return _per_row("reasons", rows, headers, rules)


@xw.func(category=CATEGORY)
@xw.arg("rows", "raw", doc=ROWS_DOC)
@xw.arg("headers", "raw", doc=HEADERS_DOC)
@xw.arg("max_tips", "raw", doc=MAX_TIPS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def CONVERSION_TIPS(
    rows: Any, headers: Any = None, max_tips: Any = None, rules: Any = None
) -> Cells:
    """The most useful tips for each row, best first: to win a customer as a client, or keep one."""
    return _per_row("conversion_tips", rows, headers, rules, max_tips)


@xw.func(category=CATEGORY)
@xw.arg("rows", "raw", doc=ROWS_DOC)
@xw.arg("headers", "raw", doc=HEADERS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def BUYER_TYPE(rows: Any, headers: Any = None, rules: Any = None) -> Cells:
    """Consumer, Business or Unknown for each account row."""
    return _per_row("buyer_type", rows, headers, rules)


@xw.func(category=CATEGORY)
@xw.arg("business_type", "raw", doc=BUSINESS_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def BUSINESS_MODEL(business_type: Any, rules: Any = None) -> Cells:
    """Client-based, Customer-based, Hybrid or Unknown for a business type such as Law firm."""
    return _guarded(_business_model, business_type, rules)


@xw.func(category=CATEGORY)
@xw.arg("table", "raw", doc=TABLE_DOC)
@xw.arg("rules", "raw", doc=RULES_DOC)
@xw.ret("raw")
def CLASSIFY_TABLE(table: Any, rules: Any = None) -> Cells:
    """Every result column for every row of a table, spilled with a header row."""
    return _guarded(_classify_table, table, rules)


@xw.func(category=CATEGORY)
@xw.ret("raw")
def RELATIONSHIP_RULES() -> Cells:
    """The built-in rulebook as a table, each entry citing its source (edit a copy for rules)."""
    return _guarded(_rules_table)


# ------------------------------------------------------------------------------ shapes
def _per_row(column: str, rows: Any, headers: Any, rules: Any, max_tips: Any = None) -> Cells:
    """One result column: one cell for one data row, a column of cells for many."""
    try:
        (values,) = _classify(rows, headers, rules, max_tips, (column,))
        return [[v] for v in values]
    except Exception as exc:  # a cell shows a message, never a traceback
        return [[_message(exc, headers_given=headers is not None)]]


def _classify_table(table: Any, rules: Any) -> Cells:
    columns = _classify(table, None, rules, None, RESULT_COLUMNS)
    return [list(RESULT_COLUMNS), *map(list, zip(*columns, strict=True))]


def _business_model(business_type: Any, rules: Any) -> Cells:
    rb, _ = _rulebook(rules)
    grid = convert.table(business_type) or [[None]]
    cells = [c for row in grid for c in row]
    filled = [i for i, c in enumerate(cells) if not convert.is_blank(c)]
    labels = engine.business_model([cells[i] for i in filled], rb) if filled else []
    out: list[Any] = [""] * len(cells)
    for i, text in zip(filled, labels, strict=True):
        out[i] = text
    width = len(grid[0])
    return [out[r * width : (r + 1) * width] for r in range(len(grid))]


@cache
def _default_rules_table() -> tuple[tuple[Any, ...], ...]:
    return tuple(
        tuple("" if v is None else v for v in row) for row in rulebook_to_rows(default_rulebook())
    )


def _rules_table() -> Cells:
    return [list(row) for row in _default_rules_table()]


# ------------------------------------------------------------------------------ classify
def _classify(
    rows: Any, headers: Any, rules: Any, max_tips: Any, wanted: tuple[str, ...]
) -> list[list[Any]]:
    """The wanted result columns: one list per column, one plain value per data row.

    A blank row gets "" in every column.
    """
    limit = convert.whole_number(max_tips, "max_tips")
    data = convert.table(rows)
    if headers is None:
        if not data:
            raise InputError("the rows range is empty: pass account rows, header row first")
        if len(data) == 1:
            raise InputError(
                "the rows range holds only a header row: add data rows below it, or pass "
                "the header row as headers, e.g. (A2:M2, A$1:M$1)"
            )
        header, data = data[0], data[1:]
    else:
        if not data:
            raise InputError("the rows range is empty: pass an account row such as A2:M2")
        header_rows = convert.table(headers)
        if len(header_rows) != 1:
            raise InputError("headers must be one row, e.g. A$1:M$1 or Accounts[#Headers]")
        header = header_rows[0]
        if len(header) != len(data[0]):
            raise InputError(
                f"the rows range has {len(data[0])} columns but headers has {len(header)}: "
                "use ranges of the same width, e.g. A2:M2 with A$1:M$1"
            )
    labels = _labels(header)
    rb, token = _rulebook(rules)
    filled = [i for i, row in enumerate(data) if not convert.blank_row(row)]
    if headers is not None and filled and filled[0] == 0 and data[0] == header:
        filled = filled[1:]  # (A1:M500, A1:M1): the header row itself gets a blank result
    if len(filled) == 1:
        result = _one(labels, data[filled[0]], rb, token, limit)
        found = [[_plain(result[RESULT_COLUMNS.index(c)])] for c in wanted]
    elif filled:
        found = _many(labels, [data[i] for i in filled], rb, limit, wanted)
    else:
        found = [[] for _ in wanted]
    if len(filled) == len(data):
        return found
    out = [[""] * len(data) for _ in wanted]
    for column, values in zip(out, found, strict=True):
        for i, value in zip(filled, values, strict=True):
            column[i] = value
    return out


_row_cache: dict[tuple, tuple[Any, ...]] = {}
_label_cache: dict[tuple, list[str]] = {}


def _labels(header: list[Any]) -> list[str]:
    """The header cells as texts (cached: a fill-down repeats one header row)."""
    try:
        key = tuple(header)
        hit = _label_cache.get(key)
    except TypeError:
        return [convert.label(c) for c in header]
    if hit is None:
        if len(_label_cache) >= LABEL_CACHE_SIZE:
            _label_cache.clear()
        hit = _label_cache[key] = [convert.label(c) for c in header]
    return hit


def _one(
    labels: list[str], row: list[Any], rb: Rulebook, token: int, limit: int | None
) -> tuple[Any, ...]:
    """One row, memoized: a row's neighbouring formulas (type, score, reasons...) share it."""
    key = (token, tuple(labels), tuple(row), limit, dt.date.today())
    try:
        hit = _row_cache.get(key)
    except TypeError:  # an unhashable cell from a Python caller
        return engine.classify_rows(labels, [row], rb, max_tips=limit)[0]
    if hit is None:
        hit = engine.classify_rows(labels, [row], rb, max_tips=limit)[0]
        if len(_row_cache) >= ROW_CACHE_SIZE:
            _row_cache.clear()
        _row_cache[key] = hit
    return hit


def _many(
    labels: list[str],
    rows: list[list[Any]],
    rb: Rulebook,
    limit: int | None,
    wanted: tuple[str, ...],
) -> list[list[Any]]:
    """The wanted columns of many rows; in pandas only those columns are computed."""
    if len(rows) <= ROWS_PATH_LIMIT:
        results = engine.classify_rows(labels, rows, rb, max_tips=limit)
        return [[_plain(r[RESULT_COLUMNS.index(c)]) for r in results] for c in wanted]
    # the same "no column recognized" message as the row path (classify takes any header)
    detail = engine.classify_detailed(
        pd.DataFrame(rows, columns=labels, dtype=object), rb, max_tips=limit, columns=wanted
    )
    engine.require_fields(detail.mapping)
    return [detail.results[c].tolist() for c in wanted]  # tolist: plain Python values


# ------------------------------------------------------------------------------ rules
_rules_cache: OrderedDict[tuple, tuple[Rulebook, int] | str] = OrderedDict()
_tokens = count(1)  # 0 is the default rulebook


def _rulebook(rules: Any) -> tuple[Rulebook, int]:
    """The rulebook of a rules range (parsed once per distinct content), or the default.

    Returns it with a token naming it in the row cache.
    """
    if rules is None:
        return default_rulebook(), 0
    rows = convert.table(rules)
    key = tuple(map(tuple, rows))
    hit = _rules_cache.get(key)
    if hit is None:
        try:
            hit = (rulebook_from_rows(rows, "rules range"), next(_tokens))
        except RulebookError as exc:
            hit = str(exc)  # remembered too: a fill-down does not re-validate a bad range
        _rules_cache[key] = hit
        while len(_rules_cache) > RULES_CACHE_SIZE:
            _rules_cache.popitem(last=False)
    else:
        _rules_cache.move_to_end(key)
    if isinstance(hit, str):
        raise RulebookError(hit)
    return hit


# ------------------------------------------------------------------------------ edges
def _guarded(function: Callable[..., Cells], *args: Any) -> Cells:
    try:
        return function(*args)
    except Exception as exc:  # a cell shows a message, never a traceback
        return [[_message(exc)]]


def _message(exc: Exception, *, headers_given: bool = True) -> str:
    """One short line for the cell that says what to fix."""
    if isinstance(exc, RelationshipError):
        text = str(exc).strip() or type(exc).__doc__ or "unusable input"
        if isinstance(exc, InputError) and text.startswith(engine.NO_FIELD):
            text += (
                " (check the headers range)"
                if headers_given
                else " (the first row of rows is read as the header row, or pass headers)"
            )
    else:
        logger.exception("unexpected error in an Excel function")
        text = f"unexpected error ({type(exc).__name__}: {exc}); please report it"
        if len(text) > 250:
            text = text[:247] + "..."
    return text[:1].upper() + text[1:]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def clear_caches() -> None:
    """Forget parsed rules ranges, header labels and memoized row results."""
    _rules_cache.clear()
    _row_cache.clear()
    _label_cache.clear()


__all__ = (
    "CATEGORY",
    "BUSINESS_MODEL",
    "BUYER_TYPE",
    "CLASSIFY_TABLE",
    "CLIENT_SCORE",
    "clear_caches",
    "CONVERSION_TIPS",
    "RELATIONSHIP_REASONS",
    "RELATIONSHIP_RULES",
    "RELATIONSHIP_TYPE",
)
