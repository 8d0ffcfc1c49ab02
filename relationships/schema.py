"""Canonical fields: map analysts' headers to fields and read their values.

Every reader works on the distinct values of a column (``pd.factorize``), so a million rows
with a few hundred distinct texts cost a few hundred parses. A value that cannot be read
becomes missing (neutral) and is reported as a :class:`Problem`-row with the reason.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from relationships.errors import InputError
from relationships.rulebook import Rulebook, fold_value, normalize_header

# Error values Excel shows in cells; they arrive as text from xlwings, openpyxl and CSV.
EXCEL_ERRORS = frozenset(
    {
        "#N/A",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#SPILL!",
        "#CALC!",
        "#GETTING_DATA",
        "#FIELD!",
        "#BLOCKED!",
        "#BUSY!",
        "#CONNECT!",
        "#UNKNOWN!",
        "#EXTERNAL!",
        "#PYTHON!",
        "#TIMEOUT!",
        "#N/A!",
        "#NV",
        "#WERT!",
        "#BEZUG!",
    }
)
try:  # Arrow-backed strings make vectorized text operations fast
    import pyarrow  # noqa: F401

    FAST_STRINGS: object = "string[pyarrow]"
except ImportError:  # pragma: no cover - pyarrow is a dependency
    FAST_STRINGS = object
MANY_DISTINCT = 2000  # distinct values above which text work runs vectorized
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 = 1900-01-01 (Excel's 1900 date system)
MAX_EXCEL_SERIAL = 2958465  # 9999-12-31
_THOUSANDS = re.compile(r"^[+]?\d{1,3}(,\d{3})+(\.\d+)?$")
_ISO_DATE = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)


@dataclass(frozen=True)
class ColumnMapping:
    """Which input column feeds each canonical field, and which columns were left alone."""

    fields: dict[str, Hashable]  # field -> column label
    unmapped: list[Hashable]
    duplicates: dict[Hashable, str]  # column -> field it also matched (ignored: first wins)

    def describe(self) -> dict[str, str]:
        return {str(col): f for f, col in self.fields.items()}


def map_columns(
    columns: Sequence[Hashable], rulebook: Rulebook, overrides: Mapping[str, str] | None = None
) -> ColumnMapping:
    """Map headers to fields by their synonyms; ``overrides`` maps header text -> field.

    Matching ignores case, spacing, punctuation and the rulebook's ignore words. The first
    column that matches a field wins; later ones pass through untouched.
    """
    words = rulebook.ignore_word_set()
    lookup = rulebook.header_lookup()
    known = set(rulebook.field_names())
    forced: dict[str, str] = {}
    for header, fname in (overrides or {}).items():
        if fname not in known:
            raise InputError(
                f"--map {header}={fname}: unknown field '{fname}' "
                f"(fields: {', '.join(rulebook.field_names())})"
            )
        forced[normalize_header(header, words)] = fname
    if forced:
        matched = {normalize_header(c, words) for c in columns}
        for header in overrides or {}:
            if normalize_header(header, words) not in matched:
                raise InputError(f"--map {header}=...: no column is headed {header!r}")
    fields: dict[str, Hashable] = {}
    unmapped: list[Hashable] = []
    duplicates: dict[Hashable, str] = {}
    taken_by_force = set(forced.values())
    for col in columns:
        norm = normalize_header(col, words)
        fname = forced.get(norm)
        if fname is None:
            fname = lookup.get(norm)
            if fname in taken_by_force:
                fname = None
        if fname is None:
            unmapped.append(col)
        elif fname in fields:
            duplicates[col] = fname
            unmapped.append(col)
        else:
            fields[fname] = col
    return ColumnMapping(fields, unmapped, duplicates)


# ------------------------------------------------------------------------------ values
# per cell of an object array, looped in C: is it a bool (True/False, numpy's bool_)?
_IS_BOOL = np.frompyfunc(lambda v: v.__class__ is bool or v.__class__ is np.bool_, 1, 1)


def _uniques(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """codes (-1 = missing) and distinct values of a column; True/False kept apart from 1/0."""
    if series.dtype == object:
        # factorize reads None, NaN, pd.NA and NaT as missing: no na_value pass needed
        arr = series.to_numpy(dtype=object)
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        # True == 1 and False == 0 share a hash, so factorize can merge them: only the
        # cells of a distinct value that is a bool, 0 or 1 need their type looked at.
        suspects = [
            k
            for k, u in enumerate(uniques)
            if type(u) is bool
            or isinstance(u, np.bool_)
            or (isinstance(u, int | float) and u in (0, 1))
        ]
        rows = np.flatnonzero(np.isin(codes, suspects)) if suspects else []
        if len(rows) and not {bool, np.bool_}.isdisjoint(map(type, arr[rows])):  # a C loop
            bools = rows[_IS_BOOL(arr[rows]).astype(bool)]
            arr = arr.copy()
            arr[bools] = np.where(arr[bools].astype(bool), "TRUE", "FALSE")
            codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def display(value: object) -> str:
    """A value as an analyst would read it (numbers without a trailing .0)."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating):
        f = float(value)
        if f.is_integer() and abs(f) < 1e15:
            return str(int(f))
        return f"{f:g}" if abs(f) >= 1e-4 else repr(f)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _is_blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _excel_error(value: object) -> bool:
    return isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS


class Parsed:
    """One field read from one column: the value read and any problem, per distinct cell.

    Per-row arrays (``values``, ``problems``) are built from the distinct ones on first use:
    most tests need only the distinct values and the per-row codes.
    """

    def __init__(
        self,
        codes: np.ndarray,
        uniques: np.ndarray,
        why: np.ndarray,
        *,
        kind: str,
        raw: np.ndarray | None = None,
        values: np.ndarray | None = None,
        problems: np.ndarray | None = None,
    ) -> None:
        self.codes = codes  # per-row index into the distinct values (-1 = blank)
        self.uniques = uniques  # the value read per distinct cell (None = missing)
        self.why = why  # the problem per distinct cell (None = fine)
        self.kind = kind
        self.raw = raw  # the distinct cells as given
        self.texts: pd.Series | None = None  # uniques as Arrow strings, when read vectorized
        self._values = values
        self._problems = problems

    def _take(self, table: list, missing: object, dtype: str) -> np.ndarray:
        out = np.empty(len(table) + 1, dtype=dtype)
        out[:-1] = table
        out[-1] = missing
        return out[self.codes]

    @property
    def values(self) -> np.ndarray:
        """The value read per row: float64 (NaN = missing) for numbers, else objects."""
        if self._values is None:
            if self.kind == "number":
                nums = [np.nan if v is None else v for v in self.uniques]
                self._values = self._take(nums, np.nan, "float64")
            else:
                self._values = self._take(list(self.uniques), None, "object")
        return self._values

    @values.setter
    def values(self, new: np.ndarray) -> None:
        self._values = new

    def unique_mask(self, test) -> np.ndarray:
        """A per-row bool array from a test of each distinct value (missing -> False)."""
        table = np.zeros(len(self.uniques) + 1, dtype=bool)
        table[:-1] = [v is not None and bool(test(v)) for v in self.uniques]
        return table[self.codes]

    def problem_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(row positions, reasons) of the rows whose cell could not be read."""
        if self._problems is not None:
            mask = np.not_equal(self._problems, None)
            idx = np.flatnonzero(mask)
            return idx, self._problems[idx]
        bad = np.append(np.not_equal(self.why, None), False)
        idx = np.flatnonzero(bad[self.codes])
        return idx, self.why[self.codes[idx]]

    def shown(self, idx: np.ndarray, cells: Any) -> np.ndarray:
        """The cells at row positions ``idx`` as an analyst reads them (for problem reports)."""
        codes = self.codes[idx]
        if self.raw is not None and len(self.raw) and (codes >= 0).all():
            table = np.empty(len(self.raw), dtype=object)
            for c in np.unique(codes).tolist():
                table[c] = display(self.raw[c])
            return table[codes]
        picked = cells.iloc[idx] if isinstance(cells, pd.Series) else [cells[i] for i in idx]
        return np.array([display(v) for v in picked], dtype=object)

    @property
    def problems(self) -> np.ndarray:
        """The problem per row (None = fine)."""
        if self._problems is None:
            self._problems = self._take(list(self.why), None, "object")
        return self._problems


def _read_text(u: object) -> tuple[str | None, str | None]:
    text = display(u).strip()
    return (text or None), None


def _read_number(u: object) -> tuple[float | None, str | None]:
    if isinstance(u, bool | np.bool_) or u in ("TRUE", "FALSE"):
        return None, "is TRUE/FALSE, not a number"
    if isinstance(u, int | float | np.integer | np.floating):
        f = float(u)
    else:
        text = str(u).strip().replace("\u00a0", "").replace(" ", "")
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        try:
            f = float(text)
        except ValueError:
            return None, "is not a number"
    if not math.isfinite(f):
        return None, "is not a finite number"
    if f < 0:
        return None, "is negative"
    return f, None


def _read_date(u: object) -> tuple[dt.date | None, str | None]:
    if isinstance(u, pd.Timestamp):
        return (None, "is not a date") if pd.isna(u) else (u.date(), None)
    if isinstance(u, dt.datetime):
        return u.date(), None
    if isinstance(u, dt.date):
        return u, None
    if isinstance(u, np.datetime64):
        return pd.Timestamp(u).date(), None
    if isinstance(u, bool | np.bool_):
        return None, "is TRUE/FALSE, not a date"
    if isinstance(u, int | float | np.integer | np.floating):
        serial = float(u)
        if not math.isfinite(serial) or not 1 <= serial <= MAX_EXCEL_SERIAL:
            return None, "is not a date (Excel date numbers run from 1 to 2958465)"
        return EXCEL_EPOCH + dt.timedelta(days=int(serial)), None
    text = str(u).strip()
    m = _ISO_DATE.match(text)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])), None
        except ValueError:
            return None, "is not a valid date"
    number, _ = _read_number(text)
    if number is not None:
        return _read_date(number)
    return None, "is not a date (use a date cell or YYYY-MM-DD)"


class FieldReader:
    """Reads the cells of one field; the same per-value rules serve both engine paths."""

    def __init__(self, kind: str, field: str, vocabulary: Mapping[str, str] | None = None):
        self.kind, self.field = kind, field
        self.vocabulary = vocabulary or {}
        allowed = ", ".join(sorted(set(self.vocabulary.values())))
        self._unknown = f"is not a known {field} value (use {allowed})"
        self._read = {
            "text": _read_text,
            "number": _read_number,
            "category": self._read_category,
            "date": _read_date,
        }[kind]

    def _read_category(self, u: object) -> tuple[str | None, str | None]:
        value = self.vocabulary.get(fold_value(display(u)))
        return (value, None) if value is not None else (None, self._unknown)

    def read(self, u: object) -> tuple[object, str | None]:
        """(value read, None) or (None, why); blanks read as (None, None)."""
        if _is_blank(u):
            return None, None
        if _excel_error(u):
            return None, f"is the Excel error {str(u).strip()}"
        return self._read(u)

    def _assemble(self, codes: np.ndarray, out: list, why: list, raw: Sequence) -> Parsed:
        uniques = np.empty(len(out), dtype=object)
        uniques[:] = out
        why_u = np.empty(len(why), dtype=object)
        why_u[:] = why
        raw_cells = np.empty(len(raw), dtype=object)
        raw_cells[:] = list(raw)
        return Parsed(codes, uniques, why_u, kind=self.kind, raw=raw_cells)

    def column(self, series: pd.Series) -> Parsed:
        """Read a pandas column, parsing each distinct value once."""
        if self.kind == "number" and _plain_numeric(series):
            return _numeric_column(series)
        if self.kind == "date" and pd.api.types.is_datetime64_any_dtype(series.dtype):
            series = series.astype(object)
        if self.kind == "text" and _arrow_strings(series):
            codes, native = pd.factorize(series, use_na_sentinel=True)
            if len(native) > MANY_DISTINCT:
                return self._texts(codes, pd.Series(native, dtype=series.dtype))
            uniques = np.asarray(native, dtype=object)
        else:
            codes, uniques = _uniques(series)
        if self.kind == "text" and len(uniques) > MANY_DISTINCT:
            is_str = np.fromiter((type(u) is str for u in uniques), bool, len(uniques))
            if is_str.all():
                return self._texts(codes, pd.Series(uniques, dtype=object).astype(FAST_STRINGS))
        read = [self.read(u) for u in uniques]
        return self._assemble(codes, [r[0] for r in read], [r[1] for r in read], uniques)

    def _texts(self, codes: np.ndarray, native: pd.Series) -> Parsed:
        """Many distinct texts, read vectorized: what ``read`` does, one text at a time."""
        texts = native.str.strip()
        errors = texts.str.upper().isin(EXCEL_ERRORS).to_numpy(dtype=bool)
        stripped = texts.astype(object).to_numpy(na_value=None).copy()
        stripped[stripped == ""] = None
        why = np.full(len(stripped), None, dtype=object)
        why[errors] = ["is the Excel error " + t for t in stripped[errors]]
        stripped[errors] = None
        parsed = self._assemble(codes, stripped.tolist(), why.tolist(), native.to_numpy(object))
        parsed.texts = texts.where(pd.Series(stripped, index=texts.index).notna())
        return parsed

    def cells(self, values: Sequence[object]) -> Parsed:
        """Read a few cells without pandas (the fast path for single-row calls)."""
        read = [self.read(u) for u in values]
        codes = np.arange(len(values))
        return self._assemble(codes, [r[0] for r in read], [r[1] for r in read], values)


def _arrow_strings(series: pd.Series) -> bool:
    return (
        FAST_STRINGS is not object
        and pd.api.types.is_string_dtype(series.dtype)
        and (series.dtype != object)
    )


def _plain_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def _numeric_column(series: pd.Series) -> Parsed:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    negative = values < 0
    infinite = np.isinf(values)
    problems = np.full(len(values), None, dtype=object)
    if negative.any() or infinite.any():
        problems[infinite] = "is not a finite number"
        problems[negative & ~infinite] = "is negative"
        values = np.where(negative | infinite, np.nan, values)
    empty = np.empty(0, dtype=object)
    return Parsed(
        np.full(len(values), -1),
        empty,
        empty,
        kind="number",
        raw=empty,
        values=values,
        problems=problems,
    )


def whole_months(start: dt.date, end: dt.date) -> int:
    """Complete months from start to end, like the spreadsheet DATEDIF(start, end, "m")."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return months


def months_since(dates: np.ndarray, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """relationship_months from start dates; dates after ``as_of`` become problems."""
    codes, uniques = pd.factorize(dates, use_na_sentinel=True)
    table = np.full(len(uniques) + 1, np.nan)
    why = [None] * (len(uniques) + 1)
    for i, d in enumerate(uniques):
        if d > as_of:
            why[i] = f"is after the as-of date {as_of.isoformat()}"
        else:
            table[i] = whole_months(d, as_of)
    return table[codes], np.asarray(why, dtype=object)[codes]
