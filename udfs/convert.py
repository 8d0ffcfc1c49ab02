"""Excel arguments, as each xlwings runtime delivers them, turned into plain rows of cells.

The functions take their range arguments with xlwings' ``raw`` converter: no per-cell
cleaning by xlwings (on xlwings Server that cleaning retries a failing ``pyodide`` import for
every cell), one pass here instead. What arrives:

* classic add-in (Windows, COM): one cell as a scalar, a range as a tuple of row tuples;
  error cells as COM error numbers (``-2146826246`` is ``#N/A``), date cells as datetimes
  (pywintypes, tagged UTC), empty cells as None;
* Office.js (xlwings Server, xlwings Lite): one cell as a scalar, a one-row range as a flat
  list (xlwings squeezes it), more rows as lists of lists; error cells as
  ``{"type": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}``, other data types
  as dicts with a ``basicValue``; empty cells as "" (pyodide's ``JsNull`` in xlwings Lite);
  date cells as serial numbers; an omitted optional argument as None.

Cells come out as str, float, int, bool, datetime or None, with errors as their Excel text
("#N/A"), which the engine reports as unreadable, the same as a bad value.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from relationships.errors import InputError

try:  # xlwings Lite (pyodide >= 0.28) hands empty cells over as JsNull
    from pyodide.ffi import JsNull  # type: ignore[import-not-found]
except ImportError:  # classic add-in, xlwings Server, tests
    JsNull = None

# Error numbers in COM (classic add-in), as listed in xlwings._xlwindows.
COM_ERRORS = {
    -2146826281: "#DIV/0!",
    -2146826246: "#N/A",
    -2146826259: "#NAME?",
    -2146826288: "#NULL!",
    -2146826252: "#NUM!",
    -2146826265: "#REF!",
    -2146826273: "#VALUE!",
}
# Office.js errorType names, for error objects that come without their text.
OFFICE_ERRORS = {
    "Div0": "#DIV/0!",
    "NotAvailable": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "Spill": "#SPILL!",
    "Calc": "#CALC!",
    "Busy": "#BUSY!",
    "Connect": "#CONNECT!",
    "Field": "#FIELD!",
    "GettingData": "#GETTING_DATA",
    "Blocked": "#BLOCKED!",
}
_PLAIN = frozenset({str, float, bool})  # cells that need no work (most of them)
_JSON_PLAIN = _PLAIN | {int}


def cell(value: Any) -> Any:
    """One cell as a plain value: None when empty, "#N/A"-style text for an error."""
    kind = value.__class__
    if kind in _PLAIN or value is None:
        return value
    if kind is int:
        return COM_ERRORS.get(value, value)
    if isinstance(value, dict):
        if value.get("type") == "Error":
            text = value.get("basicValue") or OFFICE_ERRORS.get(value.get("errorType"), "")
            return text or "#VALUE!"
        return cell(value.get("basicValue"))
    if JsNull is not None and isinstance(value, JsNull):
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        # classic date cells: pywintypes datetimes tagged UTC; the wall-clock date counts
        return dt.datetime(*value.timetuple()[:6], value.microsecond)
    return value  # naive datetimes, numpy numbers from Python callers


def table(value: Any) -> list[list[Any]]:
    """Any argument as a rectangular list of rows of plain cells ([] when omitted).

    An int is read as a COM error number only in tuples (classic); in lists (Office.js JSON,
    Python callers) it is a whole number.
    """
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        return [[cell(value)]]
    if not value:
        return []
    if not isinstance(value[0], list | tuple):  # one row, squeezed to a flat list
        value = [value]
    # JSON lists (Office.js) hold whole numbers as int; COM tuples (classic) hold numbers as
    # float and errors as int, so ints are only looked at there.
    keep = _JSON_PLAIN if isinstance(value[0], list) else _PLAIN
    plain = (keep | {type(None)}).issuperset  # a row of plain cells is copied as it is
    rows = [
        list(row) if plain(map(type, row)) else [c if c.__class__ in keep else cell(c) for c in row]
        for row in value
    ]
    width = max(len(r) for r in rows)
    for r in rows:
        if len(r) < width:
            r.extend([None] * (width - len(r)))
    return rows


def is_blank(value: Any) -> bool:
    """True for an empty cell (None, "" or only spaces)."""
    return value is None or (value.__class__ is str and not value.strip())


def blank_row(row: Sequence[Any]) -> bool:
    """True when every cell is blank (a plain loop: most rows stop at their first cell)."""
    for c in row:  # noqa: SIM110 (all() over a generator is slower here)
        if c is not None and (c.__class__ is not str or c.strip()):
            return False
    return True


def label(value: Any) -> str:
    """A header cell as text (a number header 2024.0 reads "2024")."""
    if is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def whole_number(value: Any, name: str) -> int | None:
    """An optional count argument: None when omitted, else a whole number >= 0.

    Raises InputError with a message that names the argument.
    """
    given = cell(value)
    if is_blank(given):
        return None
    number = given
    if isinstance(number, str):
        try:
            number = float(number.strip())
        except ValueError:
            number = None
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not math.isfinite(number)
        or number < 0
        or number != int(number)
    ):
        raise InputError(f"the {name} argument must be a whole number, 0 or more (got {given!r})")
    return int(number)
