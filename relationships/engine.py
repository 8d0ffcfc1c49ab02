"""classify(frame, rulebook) -> one row of results per input row, same index, same order.

The score is a transparent sum: ``clamp(base + sum of the weights of the signals that fire)``
and the type is "Client" when the score reaches the threshold. Everything the engine decides
is read off the rulebook; this module only evaluates it, vectorized:

1. headers are mapped to fields and each field's values read once per distinct value;
2. every signal becomes a boolean column of the ``fired`` matrix (rows x signals);
3. score, type, confidence, reasons and tips depend only on a row's fired pattern (plus the
   cell text a reason quotes), so they are computed once per distinct pattern and broadcast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from relationships import schema
from relationships.errors import InputError
from relationships.rulebook import Rulebook, Signal, load_rulebook
from relationships.schema import ColumnMapping, Parsed, display
from relationships.tips import (
    CompiledTips,
    compile_tips,
    conversion_gains,
    conversion_text,
    retention_text,
)

CLIENT, CUSTOMER = "Client", "Customer"
UNKNOWN_BUYER = "Unknown"
RESULT_COLUMNS = (
    "relationship_type",
    "client_score",
    "confidence",
    "buyer_type",
    "reasons",
    "conversion_tips",
    "warnings",
)
PROBLEM_COLUMNS = ("row", "column", "field", "value", "why")


@dataclass
class Classification:
    """Everything one classification produced."""

    results: pd.DataFrame  # RESULT_COLUMNS, same index and order as the input
    problems: pd.DataFrame  # PROBLEM_COLUMNS: one row per value that could not be read
    mapping: ColumnMapping


@dataclass(frozen=True)
class _Compiled:
    signals: tuple[Signal, ...]
    weights: np.ndarray
    positive: np.ndarray
    suppress: np.ndarray  # signals x signals: [i, j] = signal j suppresses signal i
    keywords: tuple[tuple[str, ...], ...]
    tips: CompiledTips
    signal_field_index: np.ndarray
    integral: bool  # whole-number weights and bounds: scores are whole numbers


def _compile(rb: Rulebook) -> _Compiled:
    cached = rb._index.get("compiled")
    if cached is not None:
        return cached
    signals = rb.signals
    index = {s.id: i for i, s in enumerate(signals)}
    suppress = np.zeros((len(signals), len(signals)), dtype=bool)
    for i, s in enumerate(signals):
        for other in s.suppressed_by:
            suppress[i, index[other]] = True
    names = rb.field_names()
    compiled = _Compiled(
        signals=signals,
        weights=np.array([s.weight for s in signals], dtype="float64"),
        positive=np.array([s.weight > 0 for s in signals], dtype=bool),
        suppress=suppress,
        keywords=tuple(tuple(k.lower() for k in s.keywords) for s in signals),
        tips=compile_tips(rb),
        signal_field_index=np.array([names.index(s.field) for s in signals], dtype=int),
        integral=all(
            float(x).is_integer()
            for x in (
                rb.settings.base,
                rb.settings.min_score,
                rb.settings.max_score,
                *(s.weight for s in signals),
            )
        ),
    )
    rb._index["compiled"] = compiled
    return compiled


def effective(fired: np.ndarray, suppress: np.ndarray) -> np.ndarray:
    """Fired signals less those suppressed by another fired signal."""
    if not suppress.any():
        return fired
    suppressed = (fired.astype(np.uint8) @ suppress.T.astype(np.uint8)) > 0
    return fired & ~suppressed


# ------------------------------------------------------------------------------ reading
@dataclass
class _Field:
    parsed: Parsed
    column: Hashable
    raw: Sequence[Any]  # the cells as given (for quoting and problem reports)


@dataclass
class _Problems:
    """Problems found while reading, as parallel lists (positions are 0-based rows)."""

    position: list[np.ndarray]
    column: list[str]
    field: list[str]
    why: list[np.ndarray]

    def add(self, name: str, column: Hashable, why: np.ndarray) -> None:
        mask = np.not_equal(why, None)
        if mask.any():
            idx = np.flatnonzero(mask)
            self.position.append(idx)
            self.column.append(str(column))
            self.field.append(name)
            self.why.append(why[idx])


def _read_fields(
    columns: Mapping[str, Sequence[Any] | pd.Series],
    rb: Rulebook,
    mapping: ColumnMapping,
    as_of: dt.date,
    small: bool,
) -> tuple[dict[str, _Field], _Problems]:
    """Read every mapped field; ``small`` reads cells one by one without pandas."""
    fields: dict[str, _Field] = {}
    problems = _Problems([], [], [], [])
    for spec in rb.fields:
        if spec.name not in mapping.fields:
            continue
        column = mapping.fields[spec.name]
        cells = columns[spec.name]
        reader = _reader(rb, spec.name, spec.kind)
        parsed = reader.cells(cells) if small else reader.column(cells)
        problems.add(spec.name, column, parsed.problems)
        fields[spec.name] = _Field(parsed, column, cells)

    since = fields.pop("customer_since", None)
    if since is not None:
        dates = since.parsed.values
        has_date = np.array([d is not None for d in dates], dtype=bool)
        months = np.full(len(dates), np.nan)
        why = np.full(len(dates), None, dtype=object)
        if has_date.any():
            months[has_date], why[has_date] = schema.months_since(dates[has_date], as_of)
        problems.add("customer_since", since.column, why)
        existing = fields.get("relationship_months")
        if existing is not None:
            values = existing.parsed.values
            existing.parsed.values = np.where(np.isnan(values), months, values)
        else:
            n = len(months)
            parsed = Parsed(months, np.full(n, -1), np.empty(0, dtype=object), why)
            fields["relationship_months"] = _Field(parsed, since.column, since.raw)
    return fields, problems


def _reader(rb: Rulebook, name: str, kind: str) -> schema.FieldReader:
    readers = rb._index.setdefault("readers", {})
    reader = readers.get(name)
    if reader is None:
        reader = readers[name] = schema.FieldReader(kind, name, rb.vocabulary(name))
    return reader


# ------------------------------------------------------------------------------ signals
def first_keyword(text: str | None, keywords: Sequence[str]) -> str | None:
    """The first keyword found in the text padded with a space each side (case-insensitive)."""
    if text is None:
        return None
    hay = f" {text.lower()} "
    return next((k for k in keywords if k in hay), None)


def _test(
    parsed: Parsed, test: str, keywords: Sequence[str], value: str | None, threshold: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows where one test fires, and (contains_any) the keyword matched per distinct text."""
    if test == "contains_any":
        found = np.empty(len(parsed.uniques) + 1, dtype=object)
        found[:-1] = [first_keyword(t, keywords) for t in parsed.uniques]
        found[-1] = None
        return np.not_equal(found, None)[parsed.codes], found
    if test == "is":
        return np.asarray(parsed.values == value, dtype=bool), None
    if test == "at_least":
        return parsed.values >= threshold, None
    return parsed.values < threshold, None


def _fire(
    fields: Mapping[str, _Field], compiled: _Compiled, n: int
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The fired matrix (rows x signals) and the matched keywords of contains_any signals."""
    fired = np.zeros((n, len(compiled.signals)), dtype=bool)
    matches: dict[int, np.ndarray] = {}
    for j, s in enumerate(compiled.signals):
        f = fields.get(s.field)
        if f is None:
            continue
        fired[:, j], found = _test(f.parsed, s.test, compiled.keywords[j], s.value, s.threshold)
        if found is not None:
            matches[j] = found
    return fired, matches


def _buyer_types(fields: Mapping[str, _Field], rb: Rulebook, n: int) -> np.ndarray:
    """The buyer type of the first buyer rule that fires, else Unknown."""
    out = np.full(n, UNKNOWN_BUYER, dtype=object)
    for rule in reversed(rb.buyer_rules):
        f = fields.get(rule.field)
        if f is None:
            continue
        mask, _ = _test(f.parsed, rule.test, rule.keywords, rule.value, rule.threshold)
        out[mask] = rule.buyer_type
    return out


def _group(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by small non-negative int columns: (group id per row, first row per group)."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n <= 64:  # a handful of rows: a dict beats pandas' set-up cost
        seen: dict[tuple, int] = {}
        ids = np.empty(n, dtype=np.int64)
        for i, key in enumerate(zip(*(c.tolist() for c in columns), strict=True)):
            ids[i] = seen.setdefault(key, len(seen))
    else:
        key = np.zeros(n, dtype=np.int64)
        radix = 1
        for col in columns:
            span = int(col.max()) + 1
            if radix * span >= 2**62:
                frame = pd.DataFrame(dict(enumerate(columns)))
                ids = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
                break
            key += col.astype(np.int64) * radix
            radix *= span
        else:
            ids, _ = pd.factorize(key)
    first = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    first[ids[::-1]] = np.arange(n - 1, -1, -1)
    return ids, first


def _bits(matrix: np.ndarray) -> list[np.ndarray]:
    """A bool matrix as int columns of at most 30 bits each (for grouping)."""
    cols = []
    for start in range(0, matrix.shape[1], 30):
        block = matrix[:, start : start + 30].astype(np.int64)
        cols.append(block @ (np.int64(1) << np.arange(block.shape[1], dtype=np.int64)))
    return cols or [np.zeros(matrix.shape[0], dtype=np.int64)]


# ------------------------------------------------------------------------------ patterns
@dataclass(frozen=True)
class _Verdict:
    """Everything that depends only on which signals fired."""

    score: float
    client: bool
    confidence: float
    tips: str
    reasons: tuple[tuple[int, ...], tuple[int, ...], str]  # (for, against, lead-in)


_CACHE_LIMIT = 100_000


def _verdicts(
    patterns: np.ndarray, rb: Rulebook, compiled: _Compiled, limit: int
) -> list[_Verdict]:
    """One verdict per fired pattern; cached per rulebook, so fill-downs cost a look-up."""
    cache: dict[tuple[bytes, int], _Verdict] = rb._index.setdefault("verdicts", {})
    keys = [(row.tobytes(), limit) for row in patterns]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        todo = patterns[missing]
        settings = rb.settings
        eff = effective(todo, compiled.suppress)
        raw = settings.base + eff @ compiled.weights
        score = np.clip(raw, settings.min_score, settings.max_score)
        client = score >= settings.threshold
        evidence_fields = np.array(
            [len(set(compiled.signal_field_index[row].tolist())) for row in todo], dtype=float
        )
        evidence = np.minimum(1.0, evidence_fields / settings.confidence_full_evidence)
        margin = np.minimum(
            1.0, np.abs(score - settings.threshold) / settings.confidence_full_margin
        )
        confidence = np.round(0.5 * evidence + 0.5 * margin, 2)
        gains = conversion_gains(todo, compiled.weights, compiled.suppress, compiled.tips)
        for k, i in enumerate(missing):
            if limit == 0:
                tips = ""
            elif client[k]:
                tips = retention_text(todo[k], compiled.tips, limit)
            else:
                tips = conversion_text(gains[k], compiled.tips, limit)
            cache[keys[i]] = _Verdict(
                float(score[k]),
                bool(client[k]),
                float(confidence[k]),
                tips,
                _choose_reasons(eff[k], bool(client[k]), compiled, settings.max_reasons),
            )
    return [cache[k] for k in keys]


def _choose_reasons(
    eff_row: np.ndarray, client: bool, compiled: _Compiled, limit: int
) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """(signals for the verdict, signals against it, a lead-in text) for one pattern."""
    w = compiled.weights
    on = np.flatnonzero(eff_row).tolist()
    pro = sorted(
        (j for j in on if w[j] != 0 and (w[j] > 0) == client), key=lambda j: (-abs(w[j]), j)
    )
    con = sorted(
        (j for j in on if w[j] != 0 and (w[j] > 0) != client), key=lambda j: (-abs(w[j]), j)
    )
    if pro:
        return tuple(pro[:limit]), tuple(con[:1]), ""
    if client:
        lead = "no customer evidence"
    elif con:
        lead = "not enough client evidence"
    else:
        lead = "no client evidence in this row"
    return (), tuple(con[:limit]), lead


# ------------------------------------------------------------------------------ classify
def _as_date(value: dt.date | str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"as-of date {value!r} is not a date (use YYYY-MM-DD)") from None


def classify(
    frame: pd.DataFrame,
    rulebook: Rulebook | str | Mapping[str, Any] | None = None,
    *,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    max_tips: int | None = None,
) -> pd.DataFrame:
    """Classify every row: a frame of RESULT_COLUMNS with the input's index and order."""
    return classify_detailed(
        frame, rulebook, as_of=as_of, mapping=mapping, max_tips=max_tips
    ).results


def classify_detailed(
    frame: pd.DataFrame,
    rulebook: Rulebook | str | Mapping[str, Any] | None = None,
    *,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    max_tips: int | None = None,
) -> Classification:
    """Classify and also return the problems found and the header mapping used."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"classify needs a pandas DataFrame, got {type(frame).__name__}")
    rb = load_rulebook(rulebook)
    col_map = schema.map_columns(list(frame.columns), rb, mapping)
    columns = {}
    for fname, col in col_map.fields.items():
        series = frame[col]
        if isinstance(series, pd.DataFrame):  # duplicate header labels: the first one wins
            series = series.iloc[:, 0]
        columns[fname] = series
    out, problems = _evaluate(columns, len(frame), rb, col_map, as_of, max_tips, small=False)
    results = pd.DataFrame(out, index=frame.index)
    problem_frame = pd.DataFrame(
        {
            "row": frame.index[problems["position"]] if len(frame) else [],
            "column": problems["column"],
            "field": problems["field"],
            "value": problems["value"],
            "why": problems["why"],
        },
        columns=list(PROBLEM_COLUMNS),
    )
    return Classification(results, problem_frame, col_map)


def classify_rows(
    headers: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    rulebook: Rulebook | str | Mapping[str, Any] | None = None,
    *,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    max_tips: int | None = None,
) -> list[tuple[Any, ...]]:
    """Classify a few rows given as lists of cells, without pandas overhead.

    Gives exactly what :func:`classify` gives on the same cells (one tuple of
    RESULT_COLUMNS values per row); meant for Excel functions filled down a sheet.
    Raises InputError when no header is recognized.
    """
    rb = load_rulebook(rulebook)
    key = (tuple(str(h) for h in headers), tuple(sorted((mapping or {}).items())))
    maps = rb._index.setdefault("header_maps", {})
    col_map = maps.get(key)
    if col_map is None:
        col_map = schema.map_columns(list(headers), rb, mapping)
        if len(maps) > 1000:
            maps.clear()
        maps[key] = col_map
    if not set(col_map.fields) - {"account"}:
        raise InputError(
            "no column recognized: use headers such as Industry, Service type, Billing, "
            "Tenure (months)"
        )
    positions = {str(h): i for i, h in reversed(list(enumerate(headers)))}
    where = {fname: positions[str(col)] for fname, col in col_map.fields.items()}
    compiled = _compile(rb)
    limit = rb.settings.max_tips if max_tips is None else max(0, int(max_tips))
    as_of_date = _as_date(as_of)
    return [_classify_row(row, where, col_map, rb, compiled, limit, as_of_date) for row in rows]


@dataclass(frozen=True)
class _Cell:
    """What one cell value of one field contributes (cached: fill-downs repeat values)."""

    value: Any
    why: str | None
    bits: int  # signal j fired <=> bit j set
    matches: dict[int, str]  # contains_any signal -> keyword matched
    buyer: frozenset[int]  # buyer rules that fire


def _cell(rb: Rulebook, compiled: _Compiled, fname: str, raw: Any) -> _Cell:
    cache: dict[tuple, _Cell] = rb._index.setdefault("cells", {})
    try:
        key = (fname, type(raw).__name__, raw)
        hit = cache.get(key)
    except TypeError:  # an unhashable cell: read it without caching
        key, hit = None, None
    if hit is not None:
        return hit
    spec = rb.field(fname)
    parsed = _reader(rb, fname, spec.kind).cells([raw])
    bits, matches = 0, {}
    for j, s in enumerate(compiled.signals):
        if s.field == fname:
            fired, found = _test(parsed, s.test, compiled.keywords[j], s.value, s.threshold)
            if fired[0]:
                bits |= 1 << j
                if found is not None:
                    matches[j] = found[parsed.codes[0]]
    buyer = frozenset(
        k
        for k, rule in enumerate(rb.buyer_rules)
        if rule.field == fname
        and _test(parsed, rule.test, rule.keywords, rule.value, rule.threshold)[0][0]
    )
    value = parsed.values[0]
    if isinstance(value, float):
        value = None if np.isnan(value) else float(value)
    cell = _Cell(value, parsed.problems[0], bits, matches, buyer)
    if key is not None:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        cache[key] = cell
    return cell


def _classify_row(
    row: Sequence[Any],
    where: Mapping[str, int],
    col_map: ColumnMapping,
    rb: Rulebook,
    compiled: _Compiled,
    limit: int,
    as_of: dt.date,
) -> tuple[Any, ...]:
    """One row through the same readers, tests and verdicts as the vectorized path."""
    raw = {f: (row[i] if i < len(row) else None) for f, i in where.items()}
    cells = {f: _cell(rb, compiled, f, v) for f, v in raw.items() if f != "customer_since"}
    warnings = []
    for spec in rb.fields:
        if spec.name in raw:
            info = cells.get(spec.name) or _cell(rb, compiled, spec.name, raw[spec.name])
            if info.why:
                column = str(col_map.fields[spec.name])
                warnings.append(_warning_text(spec.name, display(raw[spec.name]), info.why, column))
    if "customer_since" in raw:
        start = _cell(rb, compiled, "customer_since", raw["customer_since"]).value
        months = cells.get("relationship_months")
        if start is not None and start > as_of:
            warnings.append(
                _warning_text(
                    "customer_since",
                    display(raw["customer_since"]),
                    f"is after the as-of date {as_of.isoformat()}",
                    str(col_map.fields["customer_since"]),
                )
            )
        elif start is not None and (months is None or months.value is None):
            derived = float(schema.whole_months(start, as_of))
            cells["relationship_months"] = _cell(rb, compiled, "relationship_months", derived)
            raw["relationship_months"] = derived
    bits = 0
    for info in cells.values():
        bits |= info.bits
    verdicts: dict[tuple[int, int], _Verdict] = rb._index.setdefault("row_verdicts", {})
    verdict = verdicts.get((bits, limit))
    if verdict is None:
        pattern = np.array([(bits >> j) & 1 for j in range(len(compiled.signals))], dtype=bool)
        verdict = _verdicts(pattern[None, :], rb, compiled, limit)[0]
        if len(verdicts) > _CACHE_LIMIT:
            verdicts.clear()
        verdicts[(bits, limit)] = verdict

    def quote(j: int) -> str:
        s = compiled.signals[j]
        if "{" not in s.reason:
            return s.reason
        info = cells[s.field]
        if s.test == "contains_any":
            return _format_reason(s, text=info.value, match=info.matches[j])
        number = info.value if isinstance(info.value, float) else None
        return _format_reason(s, number=number, raw=raw[s.field])

    buyer = next(
        (
            rule.buyer_type
            for k, rule in enumerate(rb.buyer_rules)
            if rule.field in cells and k in cells[rule.field].buyer
        ),
        UNKNOWN_BUYER,
    )
    return (
        CLIENT if verdict.client else CUSTOMER,
        int(verdict.score) if compiled.integral else verdict.score,
        verdict.confidence,
        buyer,
        _compose_reasons(verdict, quote, rb),
        verdict.tips,
        "; ".join(warnings),
    )


def _evaluate(
    columns: Mapping[str, Any],
    n: int,
    rb: Rulebook,
    col_map: ColumnMapping,
    as_of: dt.date | str | None,
    max_tips: int | None,
    *,
    small: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one evaluation behind classify and classify_rows: result columns and problems."""
    compiled = _compile(rb)
    limit = rb.settings.max_tips if max_tips is None else max(0, int(max_tips))
    fields, problems = _read_fields(columns, rb, col_map, _as_date(as_of), small)
    fired, matches = _fire(fields, compiled, n)
    if n:
        pattern_ids, pattern_rows = _group(_bits(fired))
        verdicts = _verdicts(fired[pattern_rows], rb, compiled, limit)
    else:
        pattern_ids, verdicts = np.zeros(0, dtype=np.int64), []
    score = np.array([v.score for v in verdicts], dtype="float64")
    client = np.array([v.client for v in verdicts], dtype=bool)
    scores = score[pattern_ids]
    out: dict[str, Any] = {
        "relationship_type": np.where(client, CLIENT, CUSTOMER)[pattern_ids].astype(object)
        if n
        else np.empty(0, dtype=object),
        "client_score": scores.astype("int64") if compiled.integral else scores,
        "confidence": np.array([v.confidence for v in verdicts], dtype="float64")[pattern_ids],
        "buyer_type": _buyer_types(fields, rb, n),
        "reasons": _reason_texts(verdicts, pattern_ids, fields, matches, compiled, rb),
        "conversion_tips": np.array([v.tips for v in verdicts] + [""], dtype=object)[pattern_ids],
        "warnings": np.full(n, "", dtype=object),
    }
    report = _problem_report(problems, fields, columns, col_map)
    if len(report["position"]):
        texts: dict[int, list[str]] = {}
        for pos, fname, value, why, column in zip(
            report["position"],
            report["field"],
            report["value"],
            report["why"],
            report["column"],
            strict=True,
        ):
            texts.setdefault(int(pos), []).append(_warning_text(fname, value, why, column))
        warnings = out["warnings"]
        for pos, items in texts.items():
            warnings[pos] = "; ".join(items)
    return out, report


def _problem_report(
    problems: _Problems,
    fields: Mapping[str, _Field],
    columns: Mapping[str, Any],
    col_map: ColumnMapping,
) -> dict[str, Any]:
    """Problems as parallel columns sorted by row, with the offending values quoted."""
    position, column, field_, value, why = [], [], [], [], []
    for idx, col, fname, reasons in zip(
        problems.position, problems.column, problems.field, problems.why, strict=True
    ):
        cells = columns.get(fname)
        if cells is None:  # customer_since, read then folded into relationship_months
            cells = columns["customer_since"]
        get = cells.iloc.__getitem__ if isinstance(cells, pd.Series) else cells.__getitem__
        position.extend(idx.tolist())
        column.extend([col] * len(idx))
        field_.extend([fname] * len(idx))
        value.extend(display(get(int(i))) for i in idx)
        why.extend(reasons.tolist())
    order = sorted(range(len(position)), key=position.__getitem__)

    def pick(xs: list) -> list:
        return [xs[i] for i in order]

    return {
        "position": np.array(pick(position), dtype=np.int64),
        "column": pick(column),
        "field": pick(field_),
        "value": pick(value),
        "why": pick(why),
    }


def _reason_texts(
    verdicts: list[_Verdict],
    pattern_ids: np.ndarray,
    fields: Mapping[str, _Field],
    matches: Mapping[int, np.ndarray],
    compiled: _Compiled,
    rb: Rulebook,
) -> np.ndarray:
    """Reasons per row; computed once per (pattern, quoted cell values)."""
    n = len(pattern_ids)
    if n == 0:
        return np.empty(0, dtype=object)
    signals = compiled.signals
    quoting = [("{" in s.reason) for s in signals]
    key_cols = [pattern_ids]
    for name, f in fields.items():
        quotes = np.array(
            [
                any(quoting[j] and signals[j].field == name for j in v.reasons[0] + v.reasons[1])
                for v in verdicts
            ],
            dtype=bool,
        )
        if not quotes.any():
            continue
        p = f.parsed
        codes = pd.factorize(p.values)[0] if p.values.dtype == np.float64 else p.codes
        key_cols.append(np.where(quotes[pattern_ids], codes + 1, 0))
    ids, first = _group(key_cols)

    def quote(j: int, row: int) -> str:
        s = signals[j]
        if not quoting[j]:
            return s.reason
        f = fields[s.field]
        p = f.parsed
        if s.test == "contains_any":
            code = p.codes[row]
            return _format_reason(s, text=p.uniques[code], match=matches[j][code])
        v = p.values[row]
        raw = f.raw.iloc[row] if isinstance(f.raw, pd.Series) else f.raw[row]
        return _format_reason(s, number=v if isinstance(v, float) else None, raw=raw)

    texts = np.empty(len(first), dtype=object)
    for g, row in enumerate(first.tolist()):
        verdict = verdicts[pattern_ids[row]]
        texts[g] = _compose_reasons(verdict, lambda j, row=row: quote(j, row), rb)
    return texts[ids]


def _format_reason(
    s: Signal,
    *,
    text: str | None = None,
    match: str | None = None,
    number: float | None = None,
    raw: Any = None,
) -> str:
    """A signal's reason with {value}/{match} filled from the cell that fired it."""
    if s.test == "contains_any":
        return s.reason.format(value=text, match=(match or "").strip())
    if number is not None:
        return s.reason.format(value=display(number), match="")
    return s.reason.format(value=display(raw).strip(), match="")


def _compose_reasons(verdict: _Verdict, quote: Any, rb: Rulebook) -> str:
    """The reasons cell: the signals for the verdict, then 'despite' the strongest against."""
    pro, con, lead = verdict.reasons
    if lead:
        if not con:
            return lead
        return f"{lead} (score {verdict.score:g} < {rb.settings.threshold:g}): " + "; ".join(
            quote(j) for j in con
        )
    parts = [quote(j) for j in pro]
    if con:
        parts.append("despite " + quote(con[0]))
    return "; ".join(parts)


def _warning_text(fname: str, value: str, why: str, column: str) -> str:
    return f"{fname}: '{value}' {why} (column '{column}')"


def business_model(
    texts: Sequence[Any], rulebook: Rulebook | str | Mapping[str, Any] | None = None
) -> list[str]:
    """'Client-based', 'Customer-based', 'Hybrid' (both) or 'Unknown' per business-type text.

    Read off the business_type signals of the rulebook: positive weight = client-based.
    """
    rb = load_rulebook(rulebook)
    compiled = _compile(rb)
    parsed = schema.FieldReader("text", "business_type").cells(list(texts))
    client = np.zeros(len(texts), dtype=bool)
    customer = np.zeros(len(texts), dtype=bool)
    for j, s in enumerate(compiled.signals):
        if s.field == "business_type" and s.test == "contains_any":
            fired, _ = _test(parsed, s.test, compiled.keywords[j], None, None)
            if s.weight > 0:
                client |= fired
            elif s.weight < 0:
                customer |= fired
    labels = {
        (True, False): "Client-based",
        (False, True): "Customer-based",
        (True, True): "Hybrid",
        (False, False): "Unknown",
    }
    return [labels[(bool(a), bool(b))] for a, b in zip(client, customer, strict=True)]
