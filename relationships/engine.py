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
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from relationships import schema
from relationships.errors import InputError
from relationships.rulebook import Rulebook, Signal, load_rulebook
from relationships.schema import ColumnMapping, Parsed, display
from relationships.tips import CompiledTips, compile_tips, format_points, tip_texts

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
    integral: bool  # whole-number weights and bounds: scores are whole numbers
    field_onehot: np.ndarray  # signals x fields: which field each signal tests
    field_of: tuple[int, ...]  # the field index each signal tests
    reason_order: np.ndarray  # signal ids, strongest (|weight|) first, zero weights left out


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
        integral=all(
            float(x).is_integer()
            for x in (
                rb.settings.base,
                rb.settings.min_score,
                rb.settings.max_score,
                *(s.weight for s in signals),
            )
        ),
        field_of=tuple(names.index(s.field) for s in signals),
        field_onehot=np.eye(len(names), dtype=np.int64)[
            [names.index(s.field) for s in signals]
        ].reshape(len(signals), len(names)),
        reason_order=np.array(
            sorted(
                (j for j, s in enumerate(signals) if s.weight != 0),
                key=lambda j: (-abs(signals[j].weight), j),
            ),
            dtype=np.int64,
        ),
    )
    rb._index["compiled"] = compiled
    return compiled


def effective(fired: np.ndarray, suppress: np.ndarray) -> np.ndarray:
    """Fired signals less those suppressed by another fired signal."""
    pairs = _suppression_pairs(suppress)
    if not pairs:
        return fired
    out = fired.copy()
    for i, by in pairs:
        hit = fired[:, by[0]] if len(by) == 1 else fired[:, by].any(axis=1)
        out[:, i] &= ~hit
    return out


_PAIRS: dict[bytes, list[tuple[int, np.ndarray]]] = {}


def _suppression_pairs(suppress: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(suppressed signal, its suppressors) pairs of a suppression matrix, cached."""
    key = suppress.tobytes() + bytes(str(suppress.shape), "ascii")
    pairs = _PAIRS.get(key)
    if pairs is None:
        pairs = [(int(i), np.flatnonzero(suppress[i])) for i in np.flatnonzero(suppress.any(1))]
        if len(_PAIRS) > 64:
            _PAIRS.clear()
        _PAIRS[key] = pairs
    return pairs


# ------------------------------------------------------------------------------ reading
@dataclass
class _Field:
    parsed: Parsed
    column: Hashable
    raw: Sequence[Any]  # the cells as given (for quoting and problem reports)


@dataclass
class _Problems:
    """Problems found while reading: one part per field, positions 0-based rows."""

    parts: list[tuple[np.ndarray, str, str, np.ndarray, np.ndarray]]

    def add(
        self,
        name: str,
        column: Hashable,
        parsed: Parsed,
        cells: Any,
        idx: np.ndarray,
        why: np.ndarray,
    ) -> None:
        if len(idx):
            self.parts.append((idx, str(column), name, parsed.shown(idx, cells), why))


def _read_fields(
    columns: Mapping[str, Sequence[Any] | pd.Series],
    rb: Rulebook,
    mapping: ColumnMapping,
    as_of: dt.date,
    only: frozenset[str] | None = None,
) -> tuple[dict[str, _Field], _Problems]:
    """Read every mapped field (or only those named in ``only``), each value once."""
    fields: dict[str, _Field] = {}
    problems = _Problems([])
    for spec in rb.fields:
        if spec.name not in mapping.fields or (only is not None and spec.name not in only):
            continue
        column = mapping.fields[spec.name]
        cells = columns[spec.name]
        parsed = _reader(rb, spec.name, spec.kind).column(cells)
        problems.add(spec.name, column, parsed, cells, *parsed.problem_rows())
        fields[spec.name] = _Field(parsed, column, cells)

    since = fields.pop("customer_since", None)
    if since is not None:
        dates = since.parsed.values
        has_date = np.array([d is not None for d in dates], dtype=bool)
        months = np.full(len(dates), np.nan)
        why = np.full(len(dates), None, dtype=object)
        if has_date.any():
            months[has_date], why[has_date] = schema.months_since(dates[has_date], as_of)
        late = np.flatnonzero(np.not_equal(why, None))
        problems.add("customer_since", since.column, since.parsed, since.raw, late, why[late])
        existing = fields.get("relationship_months")
        if existing is not None:
            values = existing.parsed.values
            existing.parsed.values = np.where(np.isnan(values), months, values)
        else:
            n, empty = len(months), np.empty(0, dtype=object)
            parsed = Parsed(
                np.full(n, -1),
                empty,
                empty,
                kind="number",
                values=months,
                problems=np.full(n, None, dtype=object),
            )
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


_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _first_keywords(parsed: Parsed, keywords: Sequence[str]) -> list[str | None]:
    """first_keyword for each distinct text; vectorized when there are many."""
    texts = parsed.uniques
    if len(texts) < schema.MANY_DISTINCT:
        return [first_keyword(t, keywords) for t in texts]
    hay = _haystacks(parsed)
    found = np.full(len(texts), None, dtype=object)
    open_ = np.ones(len(texts), dtype=bool)
    for kw in keywords:
        hit = open_ & hay.str.contains(kw, regex=False).fillna(False).to_numpy(dtype=bool)
        found[hit] = kw
        open_ &= ~hit
    return found.tolist()


def _haystacks(parsed: Parsed) -> pd.Series:
    """Each text lower-cased and padded with a space each side (missing texts stay missing)."""
    series = parsed.texts
    if series is None:
        series = pd.Series(parsed.uniques, dtype=object).astype(schema.FAST_STRINGS)
    return " " + series.str.lower() + " "


def _test(
    parsed: Parsed,
    test: str,
    keywords: Sequence[str],
    value: str | None,
    threshold: float | None,
    *,
    need_match: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows where one test fires, and (contains_any) the keyword matched per distinct text.

    Without ``need_match`` many distinct texts are searched in one regex pass and no
    keyword is returned.
    """
    if test == "contains_any":
        if not need_match and len(parsed.uniques) >= schema.MANY_DISTINCT:
            pattern = "|".join(_REGEX_SPECIAL.sub(r"\\\1", k) for k in keywords)
            hit = _haystacks(parsed).str.contains(pattern, regex=True)
            table = np.append(hit.fillna(False).to_numpy(dtype=bool), False)
            return table[parsed.codes], None
        found = np.empty(len(parsed.uniques) + 1, dtype=object)
        found[:-1] = _first_keywords(parsed, keywords)
        found[-1] = None
        return np.not_equal(found, None)[parsed.codes], found
    if test == "is":
        return parsed.unique_mask(lambda v: v == value), None
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
        fired[:, j], found = _test(
            f.parsed,
            s.test,
            compiled.keywords[j],
            s.value,
            s.threshold,
            need_match="{match}" in s.reason,
        )
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
        mask, _ = _test(
            f.parsed, rule.test, rule.keywords, rule.value, rule.threshold, need_match=False
        )
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
class _Verdicts:
    """Everything that depends only on which signals fired, one entry per fired pattern."""

    score: np.ndarray
    client: np.ndarray
    confidence: np.ndarray
    tips: np.ndarray  # object: the tips cell
    pro: np.ndarray  # patterns x max_reasons: signals for the verdict, strongest first; -1 pad
    con: np.ndarray  # patterns x max_reasons: signals against it; -1 pad
    lead: np.ndarray  # object: "" or the lead-in when no signal supports the verdict

    def take(self, i: int) -> _Verdicts:
        return _Verdicts(*(getattr(self, f)[i : i + 1] for f in self.__dataclass_fields__))


_CACHE_LIMIT = 100_000
LEAD_NO_CUSTOMER = "no customer evidence"
LEAD_NOT_ENOUGH = "not enough client evidence"
LEAD_NONE = "no client evidence in this row"


def _verdicts(
    patterns: np.ndarray,
    rb: Rulebook,
    compiled: _Compiled,
    limit: int,
    *,
    tips: bool = True,
    reasons: bool = True,
) -> _Verdicts:
    """Score, type, confidence, tips and chosen reasons for each fired pattern (vectorized).

    Without ``tips`` the tips cells are left empty, without ``reasons`` no signal is chosen
    (for a caller that shows neither).
    """
    settings = rb.settings
    eff = effective(patterns, compiled.suppress)
    raw = settings.base + eff @ compiled.weights
    score = np.clip(raw, settings.min_score, settings.max_score)
    client = score >= settings.threshold
    evidence_fields = ((patterns.astype(np.int64) @ compiled.field_onehot) > 0).sum(axis=1)
    evidence = np.minimum(1.0, evidence_fields / settings.confidence_full_evidence)
    margin = np.minimum(1.0, np.abs(score - settings.threshold) / settings.confidence_full_margin)
    confidence = np.round(0.5 * evidence + 0.5 * margin, 2)
    tip_cells = tip_texts(
        patterns, client, compiled.weights, compiled.suppress, compiled.tips, limit if tips else 0
    )

    # Reasons: signals of the verdict's sign, strongest first (a fixed order: -|weight|, index).
    k = settings.max_reasons
    if not reasons:
        none = np.full((len(patterns), k), -1, dtype=np.int64)
        lead = np.full(len(patterns), "", dtype=object)
        return _Verdicts(score, client, confidence, tip_cells, none, none.copy(), lead)
    ranked = eff[:, compiled.reason_order]
    positive = compiled.weights[compiled.reason_order] > 0
    negative = compiled.weights[compiled.reason_order] < 0
    supports = ranked & np.where(client[:, None], positive[None, :], negative[None, :])
    opposes = ranked & np.where(client[:, None], negative[None, :], positive[None, :])
    has_pro = supports.any(axis=1)
    pro = _first_k(supports, k, compiled.reason_order)
    con = _first_k(opposes, k, compiled.reason_order)
    con[has_pro, 1:] = -1  # with support, name only the strongest signal against
    lead = np.full(len(patterns), "", dtype=object)
    lead[~has_pro & client] = LEAD_NO_CUSTOMER
    lead[~has_pro & ~client & opposes.any(axis=1)] = LEAD_NOT_ENOUGH
    lead[~has_pro & ~client & ~opposes.any(axis=1)] = LEAD_NONE
    return _Verdicts(score, client, confidence, tip_cells, pro, con, lead)


def _verdict_one(bits: int, rb: Rulebook, compiled: _Compiled, limit: int) -> _Verdicts:
    """_verdicts for one pattern (as bits), in plain Python: no numpy set-up per call.

    For Excel fill-downs meeting a pattern for the first time. Only for rulebooks with
    whole-number weights, where sums are exact in any order, so it equals _verdicts exactly
    (tests hold the row path, which uses it, equal to classify, which does not).
    """
    settings = rb.settings
    prepared = rb._index.get("scalar")
    if prepared is None:
        prepared = rb._index["scalar"] = (
            compiled.weights.tolist(),
            [(i, by.tolist()) for i, by in _suppression_pairs(compiled.suppress)],
            [(title, _to_bits(mask)) for title, mask in compiled.tips.retention],
            [(title, _to_bits(on), _to_bits(off)) for title, on, off in compiled.tips.conversion],
        )
    weights, pairs, retention, conversion = prepared

    def effective_bits(b: int) -> int:
        out = b
        for i, by in pairs:
            if (b >> i) & 1 and any((b >> j) & 1 for j in by):
                out &= ~(1 << i)
        return out

    def total(b: int) -> float:
        out, j = 0.0, 0
        while b:
            if b & 1:
                out += weights[j]
            b >>= 1
            j += 1
        return out

    eff = effective_bits(bits)
    score = min(max(settings.base + total(eff), settings.min_score), settings.max_score)
    client = score >= settings.threshold
    fields = {compiled.field_of[j] for j in range(len(weights)) if (bits >> j) & 1}
    evidence = np.minimum(1.0, len(fields) / settings.confidence_full_evidence)
    margin = np.minimum(1.0, np.abs(score - settings.threshold) / settings.confidence_full_margin)
    confidence = float(np.round(0.5 * evidence + 0.5 * margin, 2))
    tips = ""
    if limit and client:
        unmet = [title for title, mask in retention if mask & ~bits]
        met = [title for title, mask in retention if not mask & ~bits]
        tips = "; ".join((unmet + met)[:limit])
    elif limit:
        base_sum = total(eff)
        gains = [total(effective_bits((bits | on) & ~off)) - base_sum for _, on, off in conversion]
        ranked = sorted(range(len(gains)), key=lambda k: (-gains[k], k))[:limit]
        tips = "; ".join(
            f"{conversion[k][0]} ({format_points(gains[k])})" for k in ranked if gains[k] > 0
        )
    order = compiled.reason_order.tolist()
    on = [j for j in order if (eff >> j) & 1]
    supports = [j for j in on if (weights[j] > 0) == client]
    opposes = [j for j in on if (weights[j] > 0) != client]
    k = settings.max_reasons
    con = opposes[:1] if supports else opposes[:k]
    lead = ""
    if not supports:
        lead = LEAD_NO_CUSTOMER if client else (LEAD_NOT_ENOUGH if opposes else LEAD_NONE)
    return _Verdicts(
        np.array([score], dtype="float64"),
        np.array([client], dtype=bool),
        np.array([confidence], dtype="float64"),
        np.array([tips], dtype=object),
        np.array([supports[:k] + [-1] * (k - len(supports[:k]))], dtype=np.int64),
        np.array([con + [-1] * (k - len(con))], dtype=np.int64),
        np.array([lead], dtype=object),
    )


def _to_bits(mask: np.ndarray) -> int:
    return sum(1 << int(j) for j in np.flatnonzero(mask))


def _first_k(mask: np.ndarray, k: int, order: np.ndarray) -> np.ndarray:
    """Per row, the signal ids of the first k True columns of ``mask`` (-1 where fewer)."""
    out = np.full((mask.shape[0], k), -1, dtype=np.int64)
    rank = np.cumsum(mask, axis=1)
    for slot in range(k):
        hit = mask & (rank == slot + 1)
        found = hit.any(axis=1)
        out[found, slot] = order[hit[found].argmax(axis=1)]
    return out


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
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Classify every row: a frame of RESULT_COLUMNS with the input's index and order.

    ``columns`` picks some of RESULT_COLUMNS (kept in that order); the work only a left-out
    column needs is skipped, e.g. ``columns=["relationship_type"]`` builds no reasons or tips.
    """
    return classify_detailed(
        frame, rulebook, as_of=as_of, mapping=mapping, max_tips=max_tips, columns=columns
    ).results


def classify_detailed(
    frame: pd.DataFrame,
    rulebook: Rulebook | str | Mapping[str, Any] | None = None,
    *,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    max_tips: int | None = None,
    columns: Sequence[str] | None = None,
) -> Classification:
    """Classify and also return the problems found and the header mapping used.

    With ``columns`` leaving out "warnings", fields no rule reads (such as the account name)
    are not read, so ``problems`` lists only the problems of the fields that were.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"classify needs a pandas DataFrame, got {type(frame).__name__}")
    wanted = result_columns(columns)
    rb = load_rulebook(rulebook)
    col_map = schema.map_columns(list(frame.columns), rb, mapping)
    cells = {}
    for fname, col in col_map.fields.items():
        series = frame[col]
        if isinstance(series, pd.DataFrame):  # duplicate header labels: the first one wins
            series = series.iloc[:, 0]
        cells[fname] = series
    out, problems = _evaluate(cells, len(frame), rb, col_map, as_of, max_tips, wanted)
    results = _frame(out, frame.index)
    problem_frame = _frame(
        {"row": frame.index[problems["position"]], **{c: problems[c] for c in PROBLEM_COLUMNS[1:]}},
        None,
    )
    return Classification(results, problem_frame, col_map)


def _frame(columns: Mapping[str, Any], index: pd.Index | None) -> pd.DataFrame:
    """A frame whose text columns stay object arrays (no per-cell string conversion)."""
    data = {
        name: pd.Series(values, index=index, dtype=object, copy=False)
        if np.asarray(values).dtype.kind == "O"
        else pd.Series(values, index=index)
        for name, values in columns.items()
    }
    return pd.DataFrame(data, index=index)


NO_FIELD = (
    "no column recognized as a relationship field: use headers such as Industry, "
    "Service type, Billing, Tenure (months)"
)


def require_fields(col_map: ColumnMapping, source: str | None = None, remedy: str = "") -> None:
    """Raise InputError unless some column (besides the account) feeds a field.

    The message (:data:`NO_FIELD`) starts with ``source`` ("accounts.csv: ") when given and
    ends with ``remedy`` (what else the caller can do, e.g. "--map 'Header=field'").
    """
    if not set(col_map.fields) - {"account"}:
        raise InputError(no_field_message(source, remedy))


def no_field_message(source: str | None = None, remedy: str = "") -> str:
    """The one wording of "no column feeds a field", for every caller (see require_fields)."""
    where = f"{source}: " if source else ""
    return f"{where}{NO_FIELD}{f', or {remedy}' if remedy else ''}"


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
    require_fields(col_map)
    positions = {str(h): i for i, h in reversed(list(enumerate(headers)))}
    where = {fname: positions[str(col)] for fname, col in col_map.fields.items()}
    compiled = _compile(rb)
    limit = rb.settings.max_tips if max_tips is None else max(0, int(max_tips))
    as_of_date = _as_date(as_of)
    prepared = [_prepare_row(row, where, col_map, rb, compiled, as_of_date) for row in rows]
    cache: dict[tuple[int, int], _Verdicts] = rb._index.setdefault("row_verdicts", {})
    new = sorted({bits for *_, bits in prepared if (bits, limit) not in cache})
    if new and compiled.integral and len(new) <= 8:  # a few new patterns: plain Python
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for bits in new:
            cache[(bits, limit)] = _verdict_one(bits, rb, compiled, limit)
    elif new:  # many patterns not seen before, in one vectorized pass
        n_signals = len(compiled.signals)
        patterns = np.array(
            [[(bits >> j) & 1 for j in range(n_signals)] for bits in new], dtype=bool
        ).reshape(len(new), n_signals)
        verdicts = _verdicts(patterns, rb, compiled, limit)
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for i, bits in enumerate(new):
            cache[(bits, limit)] = verdicts.take(i)
    return [_finish_row(p, cache[(p[-1], limit)], rb, compiled) for p in prepared]


_SEEN_CACHES = ("cells", "row_verdicts", "header_maps")  # what classify_rows remembers


def clear_caches(rulebook: Rulebook) -> None:
    """Forget the cells, header rows and fired patterns classify_rows has seen with this
    rulebook (its compiled form stays): the next rows are read as if never seen."""
    for key in _SEEN_CACHES:
        rulebook._index.pop(key, None)


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


def _prepare_row(
    row: Sequence[Any],
    where: Mapping[str, int],
    col_map: ColumnMapping,
    rb: Rulebook,
    compiled: _Compiled,
    as_of: dt.date,
) -> tuple[dict[str, _Cell], dict[str, Any], list[str], int]:
    """One row read through the same readers and tests as the vectorized path."""
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
    return cells, raw, warnings, bits


def _finish_row(
    prepared: tuple[dict[str, _Cell], dict[str, Any], list[str], int],
    verdict: _Verdicts,
    rb: Rulebook,
    compiled: _Compiled,
) -> tuple[Any, ...]:
    """The result tuple of a prepared row, given its pattern's verdict."""
    cells, raw, warnings, _ = prepared

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
    score = float(verdict.score[0])
    return (
        CLIENT if verdict.client[0] else CUSTOMER,
        int(score) if compiled.integral else score,
        float(verdict.confidence[0]),
        buyer,
        _compose_reasons(verdict, 0, quote, rb),
        verdict.tips[0],
        "; ".join(warnings),
    )


_VERDICT_COLUMNS = frozenset(
    {"relationship_type", "client_score", "confidence", "reasons", "conversion_tips"}
)


def result_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    """The result columns asked for, in RESULT_COLUMNS order (all when None)."""
    if columns is None:
        return RESULT_COLUMNS
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in RESULT_COLUMNS]
    if unknown:
        raise InputError(
            f"unknown result column {unknown[0]!r}: choose from {', '.join(RESULT_COLUMNS)}"
        )
    if not columns:
        raise InputError(f"no result column asked for: choose from {', '.join(RESULT_COLUMNS)}")
    return tuple(c for c in RESULT_COLUMNS if c in columns)


def _fields_for(rb: Rulebook, wanted: tuple[str, ...]) -> frozenset[str] | None:
    """The fields the wanted result columns read (None: all, as warnings report every field)."""
    if "warnings" in wanted:
        return None
    names: set[str] = set()
    if _VERDICT_COLUMNS.intersection(wanted):
        names.update(s.field for s in rb.signals)
    if "buyer_type" in wanted:
        names.update(r.field for r in rb.buyer_rules)
    if "relationship_months" in names:
        names.add("customer_since")  # months are derived from the start date when missing
    return frozenset(names)


def _evaluate(
    columns: Mapping[str, Any],
    n: int,
    rb: Rulebook,
    col_map: ColumnMapping,
    as_of: dt.date | str | None,
    max_tips: int | None,
    wanted: tuple[str, ...] = RESULT_COLUMNS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one evaluation behind classify: the wanted result columns and the problems.

    Work a left-out column alone needs is skipped: tips, reasons, buyer rules, and reading
    fields no rule uses (their only output is the warnings column).
    """
    compiled = _compile(rb)
    limit = rb.settings.max_tips if max_tips is None else max(0, int(max_tips))
    fields, problems = _read_fields(columns, rb, col_map, _as_date(as_of), _fields_for(rb, wanted))
    out: dict[str, Any] = {}
    if _VERDICT_COLUMNS.intersection(wanted):
        fired, matches = _fire(fields, compiled, n)
        pattern_ids, pattern_rows = _group(_bits(fired))
        verdicts = _verdicts(
            fired[pattern_rows],
            rb,
            compiled,
            limit,
            tips="conversion_tips" in wanted,
            reasons="reasons" in wanted,
        )
        scores = verdicts.score[pattern_ids]
        out["relationship_type"] = np.where(verdicts.client, CLIENT, CUSTOMER).astype(object)[
            pattern_ids
        ]
        out["client_score"] = scores.astype("int64") if compiled.integral else scores
        out["confidence"] = verdicts.confidence[pattern_ids]
    if "buyer_type" in wanted:
        out["buyer_type"] = _buyer_types(fields, rb, n)
    if "reasons" in wanted:
        out["reasons"] = _reason_texts(verdicts, pattern_ids, fields, matches, compiled, rb)
    if "conversion_tips" in wanted:
        out["conversion_tips"] = verdicts.tips[pattern_ids]
    out = {c: out[c] for c in wanted if c != "warnings"}
    if "warnings" in wanted:
        out["warnings"] = np.full(n, "", dtype=object)
    report = _problem_report(problems)
    if "warnings" in wanted and len(report["position"]):
        texts = [
            _warning_text(*item)
            for item in zip(
                report["field"], report["value"], report["why"], report["column"], strict=True
            )
        ]
        positions = report["position"]
        starts = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]])
        ends = np.r_[starts[1:], len(positions)]
        warnings = out["warnings"]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            warnings[positions[start]] = (
                texts[start] if end - start == 1 else "; ".join(texts[start:end])
            )
    return out, report


def _problem_report(problems: _Problems) -> dict[str, Any]:
    """Problems as parallel columns sorted by row (fields in rulebook order within a row)."""
    if not problems.parts:
        empty = np.empty(0, dtype=object)
        return {
            "position": np.empty(0, dtype=np.int64),
            "column": empty,
            "field": empty,
            "value": empty,
            "why": empty,
        }
    position = np.concatenate([p[0] for p in problems.parts])
    order = np.argsort(position, kind="stable")
    return {
        "position": position[order],
        "column": np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in problems.parts])[
            order
        ],
        "field": np.concatenate([np.full(len(p[0]), p[2], dtype=object) for p in problems.parts])[
            order
        ],
        "value": np.concatenate([p[3] for p in problems.parts])[order],
        "why": np.concatenate([np.asarray(p[4], dtype=object) for p in problems.parts])[order],
    }


def _reason_texts(
    verdicts: _Verdicts,
    pattern_ids: np.ndarray,
    fields: Mapping[str, _Field],
    matches: Mapping[int, np.ndarray],
    compiled: _Compiled,
    rb: Rulebook,
) -> np.ndarray:
    """Reasons per row, composed once per distinct (chosen signals, quoted cell values)."""
    n = len(pattern_ids)
    if n == 0:
        return np.empty(0, dtype=object)
    signals = compiled.signals
    chosen = np.concatenate([verdicts.pro, verdicts.con], axis=1)  # -1 = empty slot
    lead_score = np.where(verdicts.lead != "", verdicts.score, -1.0)
    signature = _group(
        [chosen[:, k] + 1 for k in range(chosen.shape[1])]
        + [pd.factorize(lead_score)[0], pd.factorize(verdicts.lead)[0]]
    )[0]
    quoting = np.array([("{" in s.reason) for s in signals] + [False], dtype=bool)
    names = rb.field_names()
    field_of = np.array([names.index(s.field) for s in signals] + [-1])
    value_codes: dict[int, np.ndarray] = {}
    for name, f in fields.items():
        p = f.parsed
        numeric = p.values.dtype == np.float64
        value_codes[names.index(name)] = pd.factorize(p.values)[0] if numeric else p.codes
    key_cols = [signature[pattern_ids]]
    for k in range(chosen.shape[1]):
        slot = chosen[pattern_ids, k]  # -1 picks the trailing "no signal" entries
        quoted = quoting[slot]
        if not quoted.any():
            continue
        code = np.zeros(n, dtype=np.int64)
        for fi, codes in value_codes.items():
            rows = quoted & (field_of[slot] == fi)
            code[rows] = codes[rows] + 1
        key_cols.append(code)
    ids, first = _group(key_cols)

    memo: dict[tuple[int, Any], str] = {}

    def quote(j: int, row: int) -> str:
        s = signals[j]
        if not quoting[j]:
            return s.reason
        p = fields[s.field].parsed
        if s.test == "contains_any":
            key: Any = p.codes[row]
        else:
            v = p.values[row]
            key = float(v) if isinstance(v, float) else ("raw", p.codes[row])
        text = memo.get((j, key))
        if text is None:
            if s.test == "contains_any":
                text = _format_reason(s, text=p.uniques[key], match=_match(matches, j, key))
            elif isinstance(key, float):
                text = _format_reason(s, number=key)
            else:
                text = _format_reason(s, raw=p.raw[key[1]])
            memo[(j, key)] = text
        return text

    texts = np.empty(len(first), dtype=object)
    for g, row in enumerate(first.tolist()):
        texts[g] = _compose_reasons(
            verdicts, int(pattern_ids[row]), lambda j, row=row: quote(j, row), rb
        )
    return texts[ids]


def _match(matches: Mapping[int, np.ndarray], j: int, code: int) -> str | None:
    found = matches.get(j)
    return None if found is None else found[code]


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


def _compose_reasons(verdicts: _Verdicts, i: int, quote: Any, rb: Rulebook) -> str:
    """The reasons cell: the signals for the verdict, then 'despite' the strongest against."""
    pro = [j for j in verdicts.pro[i].tolist() if j >= 0]
    con = [j for j in verdicts.con[i].tolist() if j >= 0]
    lead = verdicts.lead[i]
    if lead:
        if not con:
            return lead
        return f"{lead} (score {verdicts.score[i]:g} < {rb.settings.threshold:g}): " + "; ".join(
            quote(j) for j in con
        )
    parts = [quote(j) for j in pro]
    if con:
        parts.append("despite " + quote(con[0]))
    return "; ".join(parts)


def _warning_text(fname: str, value: str, why: str, column: str) -> str:
    return f"{fname}: '{value}' {why} (column '{column}')"


def conversion_candidates(results: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The customers closest to becoming clients (highest score first) with their first tip.

    ``results`` is classify's output (or a frame holding its columns); the index is kept.
    """
    customers = results[results["relationship_type"] == CUSTOMER]
    top = customers.sort_values("client_score", ascending=False, kind="stable").head(count)
    first_tip = [str(t).split("; ")[0] for t in top["conversion_tips"]]
    return pd.DataFrame(
        {"client_score": top["client_score"], "first_tip": first_tip}, index=top.index
    )


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
