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
from collections.abc import Hashable, Mapping
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
    source: pd.Series  # the raw input column (for problem reports)
    derived_from: Hashable | None = None


def _read_fields(
    frame: pd.DataFrame, rb: Rulebook, mapping: ColumnMapping, as_of: dt.date
) -> tuple[dict[str, _Field], list[pd.DataFrame]]:
    fields: dict[str, _Field] = {}
    problem_parts: list[pd.DataFrame] = []

    def add_problems(name: str, column: Hashable, source: pd.Series, why: np.ndarray) -> None:
        mask = pd.notna(why)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        problem_parts.append(
            pd.DataFrame(
                {
                    "position": idx,
                    "row": source.index[idx],
                    "column": str(column),
                    "field": name,
                    "value": [display(v) for v in source.iloc[idx]],
                    "why": why[idx],
                }
            )
        )

    for spec in rb.fields:
        if spec.name not in mapping.fields:
            continue
        column = mapping.fields[spec.name]
        series = frame[column]
        if isinstance(series, pd.DataFrame):  # duplicate header labels: first column wins
            series = series.iloc[:, 0]
        if spec.kind == "text":
            parsed = schema.parse_text(series)
        elif spec.kind == "number":
            parsed = schema.parse_number(series)
        elif spec.kind == "category":
            parsed = schema.parse_category(series, rb.vocabulary(spec.name), spec.name)
        else:
            parsed = schema.parse_date(series)
        add_problems(spec.name, column, series, parsed.problems)
        fields[spec.name] = _Field(parsed, column, series)

    since = fields.pop("customer_since", None)
    if since is not None:
        dates = since.parsed.values
        has_date = np.array([d is not None for d in dates], dtype=bool)
        months = np.full(len(dates), np.nan)
        why = np.full(len(dates), None, dtype=object)
        if has_date.any():
            months[has_date], why[has_date] = schema.months_since(dates[has_date], as_of)
        add_problems("customer_since", since.column, since.source, why)
        existing = fields.get("relationship_months")
        if existing is not None:
            values = existing.parsed.values
            fill = np.isnan(values)
            existing.parsed.values = np.where(fill, months, values)
        else:
            n = len(months)
            fields["relationship_months"] = _Field(
                Parsed(months, np.full(n, -1), np.empty(0, dtype=object), why),
                since.column,
                since.source,
                derived_from=since.column,
            )
    return fields, problem_parts


# ------------------------------------------------------------------------------ signals
def _fire(
    fields: Mapping[str, _Field], compiled: _Compiled, n: int
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The fired matrix, and for contains_any signals the matched keyword per distinct text."""
    fired = np.zeros((n, len(compiled.signals)), dtype=bool)
    matches: dict[int, np.ndarray] = {}
    for j, s in enumerate(compiled.signals):
        f = fields.get(s.field)
        if f is None:
            continue
        p = f.parsed
        if s.test == "contains_any":
            kws = compiled.keywords[j]
            found = np.empty(len(p.uniques) + 1, dtype=object)
            for u, text in enumerate(p.uniques):
                hit = None
                if text is not None:
                    hay = f" {text.lower()} "
                    hit = next((k for k in kws if k in hay), None)
                found[u] = hit
            found[-1] = None
            matches[j] = found
            fired[:, j] = pd.notna(found)[p.codes]
        elif s.test == "is":
            fired[:, j] = p.values == s.value
        elif s.test == "at_least":
            fired[:, j] = p.values >= s.threshold
        elif s.test == "below":
            fired[:, j] = p.values < s.threshold
    return fired, matches


def _group(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by several small non-negative int columns: (group id per row, first row)."""
    n = len(columns[0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    fits = True
    for col in columns:
        span = int(col.max()) + 1 if n else 1
        if radix * span >= 2**62:
            fits = False
            break
        key += col.astype(np.int64) * radix
        radix *= span
    if fits:
        ids, uniques = pd.factorize(key)
    else:
        frame = pd.DataFrame({i: c for i, c in enumerate(columns)})
        ids = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    first = np.full(ids.max() + 1 if n else 0, -1, dtype=np.int64)
    first[ids[::-1]] = np.arange(n - 1, -1, -1)
    return ids, first


def _bits(matrix: np.ndarray) -> list[np.ndarray]:
    """A bool matrix as int columns of at most 30 bits each (for grouping)."""
    cols = []
    for start in range(0, matrix.shape[1], 30):
        block = matrix[:, start : start + 30].astype(np.int64)
        cols.append(block @ (np.int64(1) << np.arange(block.shape[1], dtype=np.int64)))
    return cols or [np.zeros(matrix.shape[0], dtype=np.int64)]


# ------------------------------------------------------------------------------ classify
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
    compiled = _compile(rb)
    settings = rb.settings
    as_of_date = _as_date(as_of)
    limit = settings.max_tips if max_tips is None else max(0, int(max_tips))
    col_map = schema.map_columns(list(frame.columns), rb, mapping)
    n = len(frame)

    fields, problem_parts = _read_fields(frame, rb, col_map, as_of_date)
    fired, matches = _fire(fields, compiled, n)

    # Everything but the quoted cell texts depends on the fired pattern only.
    pattern_ids, pattern_rows = _group(_bits(fired))
    patterns = fired[pattern_rows]
    eff = effective(patterns, compiled.suppress)
    raw = settings.base + eff @ compiled.weights
    score = np.clip(raw, settings.min_score, settings.max_score)
    is_client = score >= settings.threshold
    fields_with_evidence = np.array(
        [len(set(compiled.signal_field_index[row])) for row in patterns], dtype=float
    )
    evidence = np.minimum(1.0, fields_with_evidence / settings.confidence_full_evidence)
    margin = np.minimum(1.0, np.abs(score - settings.threshold) / settings.confidence_full_margin)
    confidence = np.round(0.5 * evidence + 0.5 * margin, 2)

    if limit:
        gains = conversion_gains(patterns, compiled.weights, compiled.suppress, compiled.tips)
    tips_text = np.empty(len(patterns), dtype=object)
    for p in range(len(patterns)):
        if limit == 0:
            tips_text[p] = ""
        elif is_client[p]:
            tips_text[p] = retention_text(patterns[p], compiled.tips, limit)
        else:
            tips_text[p] = conversion_text(gains[p], compiled.tips, limit)

    chosen = [
        _choose_reasons(eff[p], is_client[p], compiled, settings.max_reasons)
        for p in range(len(patterns))
    ]
    reasons = _reason_texts(chosen, pattern_ids, fields, matches, compiled, score, settings)

    results = pd.DataFrame(
        {
            "relationship_type": np.where(is_client, CLIENT, CUSTOMER)[pattern_ids],
            "client_score": score[pattern_ids],
            "confidence": confidence[pattern_ids],
            "buyer_type": _buyer_types(fields, rb, compiled, n),
            "reasons": reasons,
            "conversion_tips": tips_text[pattern_ids],
            "warnings": "",
        },
        index=frame.index,
    )
    problems = _problems_frame(problem_parts)
    if len(problems):
        results["warnings"] = _warnings_column(problems, n)
        problems = problems.drop(columns="position")
    else:
        problems = pd.DataFrame({c: pd.Series(dtype=object) for c in PROBLEM_COLUMNS})
    for col in ("relationship_type", "buyer_type", "reasons", "conversion_tips", "warnings"):
        results[col] = results[col].astype(object)
    if compiled.integral:
        results["client_score"] = results["client_score"].astype("int64")
    return Classification(results, problems, col_map)


def _choose_reasons(
    eff_row: np.ndarray, client: bool, compiled: _Compiled, limit: int
) -> tuple[list[int], list[int], str]:
    """(signals for the verdict, signals against it, a lead-in text) for one pattern."""
    w = compiled.weights
    on = np.flatnonzero(eff_row)
    pro = [j for j in on if (w[j] > 0) == client and w[j] != 0]
    con = [j for j in on if (w[j] > 0) != client and w[j] != 0]
    pro.sort(key=lambda j: (-abs(w[j]), j))
    con.sort(key=lambda j: (-abs(w[j]), j))
    lead = ""
    if not pro:
        if client:
            lead = "no customer evidence"
        elif con:
            lead = "not enough client evidence"
        else:
            lead = "no client evidence in this row"
        return [], con[:limit], lead
    return pro[:limit], con[:1], lead


def _reason_texts(
    chosen: list[tuple[list[int], list[int], str]],
    pattern_ids: np.ndarray,
    fields: Mapping[str, _Field],
    matches: Mapping[int, np.ndarray],
    compiled: _Compiled,
    score: np.ndarray,
    settings,
) -> np.ndarray:
    signals = compiled.signals
    quoting = {j for j, s in enumerate(signals) if "{" in s.reason}
    # Per row, the code of each quoted field's value, only where a chosen reason quotes it.
    quoted_fields = sorted({signals[j].field for j in quoting})
    value_codes: dict[str, np.ndarray] = {}
    for name in quoted_fields:
        f = fields.get(name)
        if f is None:
            continue
        p = f.parsed
        if p.values.dtype == np.float64:
            codes, _ = pd.factorize(p.values, use_na_sentinel=True)
        else:
            codes = p.codes
        value_codes[name] = codes
    key_cols = [pattern_ids]
    uses = []
    for name, codes in value_codes.items():
        uses_field = np.array(
            [
                any(signals[j].field == name for j in pro + con if j in quoting)
                for pro, con, _ in chosen
            ],
            dtype=bool,
        )
        uses.append(name)
        key_cols.append(np.where(uses_field[pattern_ids], codes + 1, 0))
    ids, first = _group(key_cols)

    def quote(j: int, row: int) -> str:
        s = signals[j]
        if j not in quoting:
            return s.reason
        f = fields[s.field]
        v = f.parsed.values[row]
        if s.test == "contains_any":
            value = f.parsed.uniques[f.parsed.codes[row]]
            match = matches[j][f.parsed.codes[row]].strip()
            return s.reason.format(value=value, match=match)
        value = display(v) if isinstance(v, float) else display(f.source.iloc[row]).strip()
        return s.reason.format(value=value, match="")

    texts = np.empty(len(first), dtype=object)
    for g, row in enumerate(first):
        pro, con, lead = chosen[pattern_ids[row]]
        parts = [quote(j, row) for j in pro]
        if lead:
            text = lead
            if con:
                text += (
                    f" (score {score[pattern_ids[row]]:g} < {settings.threshold:g}): "
                    + "; ".join(quote(j, row) for j in con)
                )
            parts = [text]
        elif con:
            parts.append("despite " + quote(con[0], row))
        texts[g] = "; ".join(parts)
    return texts[ids]


def _buyer_types(fields: Mapping[str, _Field], rb: Rulebook, compiled: _Compiled, n: int):
    out = np.full(n, UNKNOWN_BUYER, dtype=object)
    for rule in reversed(rb.buyer_rules):
        f = fields.get(rule.field)
        if f is None:
            continue
        p = f.parsed
        if rule.test == "contains_any":
            kws = [k.lower() for k in rule.keywords]
            hit = np.array(
                [t is not None and any(k in f" {t.lower()} " for k in kws) for t in p.uniques]
                + [False],
                dtype=bool,
            )
            mask = hit[p.codes]
        elif rule.test == "is":
            mask = p.values == rule.value
        elif rule.test == "at_least":
            mask = p.values >= rule.threshold
        else:
            mask = p.values < rule.threshold
        out[np.asarray(mask, dtype=bool)] = rule.buyer_type
    return out


def _problems_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame()
    problems = pd.concat(parts, ignore_index=True)
    return problems.sort_values("position", kind="stable").reset_index(drop=True)


def _warnings_column(problems: pd.DataFrame, n: int) -> np.ndarray:
    text = (
        problems["field"].astype(str)
        + ": '"
        + problems["value"].astype(str)
        + "' "
        + problems["why"].astype(str)
        + " (column '"
        + problems["column"].astype(str)
        + "')"
    )
    joined = text.groupby(problems["position"].to_numpy(), sort=False).agg("; ".join)
    out = np.full(n, "", dtype=object)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return out
