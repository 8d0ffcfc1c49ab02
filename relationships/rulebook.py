"""Load, validate and export rulebooks.

A rulebook is data: settings, fields (with header synonyms), vocabularies (value synonyms),
signals (weighted tests on one field), buyer-type rules and tips, each citing its source.
It comes from TOML/JSON, a dict, an Excel "Rules" sheet or a 2D list of cells (what a UDF
receives). Whatever the origin, :func:`rulebook_from_dict` validates it and a bad entry fails
at load with a message naming the entry and what is wrong.

The sheet form (``rulebook_to_rows``) is one table with the columns of :data:`SHEET_COLUMNS`,
one row per atomic entry. Keyword and synonym rows stand one per row so that plain
spreadsheet formulas (SUMPRODUCT over SEARCH) can use them; see docs/rules-sheet.md.
"""

from __future__ import annotations

import json
import math
import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from relationships.errors import RulebookError

FIELD_KINDS = ("text", "number", "category", "date")
TESTS_FOR_KIND = {
    "text": ("contains_any",),
    "number": ("at_least", "below"),
    "category": ("is",),
    "date": (),
}
TIP_KINDS = ("conversion", "retention")
SETTING_NAMES = (
    "base",
    "threshold",
    "min_score",
    "max_score",
    "max_reasons",
    "max_tips",
    "confidence_full_evidence",
    "confidence_full_margin",
)
PLACEHOLDERS = {"value", "match"}
# SEARCH() treats these as wildcards; a keyword holding one would match differently in
# the planning templates' plain formulas than in the engine.
WILDCARDS = set("*?~")
SHEET_NAME = "Rules"
SHEET_COLUMNS = ("section", "id", "field", "test", "value", "weight", "text", "links", "source")


@dataclass(frozen=True)
class Settings:
    base: float
    threshold: float
    min_score: float
    max_score: float
    max_reasons: int
    max_tips: int
    confidence_full_evidence: float
    confidence_full_margin: float
    sources: tuple[tuple[str, str], ...] = ()

    def source_of(self, name: str) -> str:
        return dict(self.sources).get(name, "")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    description: str
    headers: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class VocabularyEntry:
    field: str
    value: str
    synonyms: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Signal:
    id: str
    field: str
    test: str
    weight: float
    reason: str
    source: str
    keywords: tuple[str, ...] = ()
    value: str | None = None
    threshold: float | None = None
    suppressed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuyerRule:
    id: str
    field: str
    test: str
    buyer_type: str
    source: str
    keywords: tuple[str, ...] = ()
    value: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Tip:
    id: str
    kind: str
    title: str
    text: str
    addresses: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class IgnoreWord:
    word: str
    source: str


@dataclass(frozen=True)
class Rulebook:
    name: str
    version: str
    settings: Settings
    ignore_words: tuple[IgnoreWord, ...]
    fields: tuple[FieldSpec, ...]
    vocabularies: tuple[VocabularyEntry, ...]
    signals: tuple[Signal, ...]
    buyer_rules: tuple[BuyerRule, ...]
    tips: tuple[Tip, ...]
    _index: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    # -- look-ups (computed once per rulebook) -------------------------------------------
    def field(self, name: str) -> FieldSpec:
        return self._fields_by_name()[name]

    def _fields_by_name(self) -> dict[str, FieldSpec]:
        if "fields" not in self._index:
            self._index["fields"] = {f.name: f for f in self.fields}
        return self._index["fields"]

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def vocabulary(self, field_name: str) -> dict[str, str]:
        """Folded synonym -> canonical value for a category field."""
        key = ("vocab", field_name)
        if key not in self._index:
            self._index[key] = {
                fold_value(syn): entry.value
                for entry in self.vocabularies
                if entry.field == field_name
                for syn in entry.synonyms
            }
        return self._index[key]

    def vocabulary_values(self, field_name: str) -> list[str]:
        """Canonical values of a category field, in rulebook order (for drop-down lists)."""
        return [v.value for v in self.vocabularies if v.field == field_name]

    def header_lookup(self) -> dict[str, str]:
        """Normalized header text -> canonical field name."""
        if "headers" not in self._index:
            words = self.ignore_word_set()
            lookup: dict[str, str] = {}
            for f in self.fields:
                for h in (f.name, *f.headers):
                    lookup.setdefault(normalize_header(h, words), f.name)
            self._index["headers"] = lookup
        return self._index["headers"]

    def ignore_word_set(self) -> frozenset[str]:
        return frozenset(w.word for w in self.ignore_words)

    def signal(self, signal_id: str) -> Signal:
        return {s.id: s for s in self.signals}[signal_id]


# ------------------------------------------------------------------------------ helpers
_HEADER_SPLIT = re.compile(r"[^0-9a-z]+")


def normalize_header(text: object, ignore_words: Iterable[str] = ()) -> str:
    """Fold a header for matching: case, spacing and punctuation do not matter."""
    raw = str(text).lower().replace("&", " and ")
    words = [w for w in _HEADER_SPLIT.split(raw) if w and w not in ignore_words]
    return " ".join(words)


def fold_value(text: str) -> str:
    """Fold a category value like the spreadsheet's TRIM(LOWER(x)): case and runs of spaces."""
    return " ".join(part for part in text.lower().split(" ") if part)


def _fmt_path(origin: str, where: str) -> str:
    return f"{origin}: {where}" if origin else where


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad braces in text {template!r} ({exc})") from None


# ------------------------------------------------------------------------------ loading
class _Reader:
    """Reads one entry of a raw dict, collecting precise errors."""

    def __init__(self, origin: str, where: str, raw: Mapping[str, Any], allowed: set[str]):
        self.origin, self.where, self.raw = origin, where, raw
        if not isinstance(raw, Mapping):
            self.fail(f"must be a table of keys, got {type(raw).__name__}")
        section = where.split(" #")[0]
        if isinstance(raw.get("id"), str):
            self.where = f"{section} '{raw['id']}'"
        elif isinstance(raw.get("name"), str) and section != "rulebook":
            self.where = f"{section} '{raw['name']}'"
        elif isinstance(raw.get("field"), str) and isinstance(raw.get("value"), str):
            self.where = f"{section} '{raw['field']}={raw['value']}'"
        unknown = sorted(set(raw) - allowed)
        if unknown:
            self.fail(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")

    def fail(self, message: str) -> None:
        raise RulebookError(_fmt_path(self.origin, f"{self.where}: {message}"))

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(f"'{key}' is missing")
            return default
        if not isinstance(value, str):
            self.fail(f"'{key}' must be text, got {value!r}")
        return value

    def number(self, key: str, *, required: bool = True) -> float | None:
        value = self.raw.get(key)
        if value is None or value == "":
            if required:
                self.fail(f"'{key}' is missing")
            return None
        if isinstance(value, bool):
            self.fail(f"'{key}' must be a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                self.fail(f"'{key}' must be a number, got {value!r}")
        if not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(f"'{key}' must be a finite number, got {value!r}")
        return float(value)

    def texts(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None or value == [] or value == "":
            if required:
                self.fail(f"'{key}' is missing or empty")
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            self.fail(f"'{key}' must be a list of texts, got {value!r}")
        out = []
        for i, item in enumerate(value, 1):
            if not isinstance(item, str) or not item.strip():
                self.fail(f"'{key}' item {i} must be non-empty text, got {item!r}")
            out.append(item)
        return tuple(out)


def rulebook_from_dict(data: Mapping[str, Any], origin: str = "") -> Rulebook:
    """Build and validate a rulebook from its dict form (as in rulebook.toml)."""
    if not isinstance(data, Mapping):
        raise RulebookError(_fmt_path(origin, "a rulebook must be a table of sections"))
    top = _Reader(
        origin,
        "rulebook",
        data,
        {
            "name",
            "version",
            "setting",
            "ignore_word",
            "field",
            "vocabulary",
            "signal",
            "buyer_rule",
            "tip",
        },
    )

    def entries(section: str) -> list[Mapping[str, Any]]:
        value = data.get(section, [])
        if not isinstance(value, list):
            top.fail(f"section '{section}' must be a list of entries")
        return value

    # settings
    settings_raw: dict[str, float] = {}
    sources: list[tuple[str, str]] = []
    for i, raw in enumerate(entries("setting"), 1):
        r = _Reader(origin, f"setting #{i}", raw, {"name", "value", "source"})
        name = r.text("name")
        r.where = f"setting '{name}'"
        if name not in SETTING_NAMES:
            r.fail(f"unknown setting (known: {', '.join(SETTING_NAMES)})")
        if name in settings_raw:
            r.fail("is defined twice")
        settings_raw[name] = r.number("value")  # type: ignore[assignment]
        sources.append((name, r.text("source")))
    missing = [n for n in SETTING_NAMES if n not in settings_raw]
    if missing:
        top.fail(f"setting '{missing[0]}' is missing")
    for name in ("max_reasons", "max_tips"):
        if settings_raw[name] < 0 or settings_raw[name] != int(settings_raw[name]):
            raise RulebookError(
                _fmt_path(
                    origin,
                    f"setting '{name}': must be a whole number >= 0, got {settings_raw[name]:g}",
                )
            )
    for name in ("confidence_full_evidence", "confidence_full_margin"):
        if settings_raw[name] <= 0:
            raise RulebookError(
                _fmt_path(origin, f"setting '{name}': must be > 0, got {settings_raw[name]:g}")
            )
    if settings_raw["min_score"] >= settings_raw["max_score"]:
        raise RulebookError(
            _fmt_path(
                origin,
                "setting 'min_score': must be below max_score "
                f"({settings_raw['min_score']:g} >= {settings_raw['max_score']:g})",
            )
        )
    if not settings_raw["min_score"] <= settings_raw["threshold"] <= settings_raw["max_score"]:
        raise RulebookError(
            _fmt_path(
                origin,
                f"setting 'threshold': must lie between min_score and max_score, "
                f"got {settings_raw['threshold']:g}",
            )
        )
    settings = Settings(
        **{k: (int(v) if k in ("max_reasons", "max_tips") else v) for k, v in settings_raw.items()},
        sources=tuple(sources),
    )

    ignore_words = []
    for i, raw in enumerate(entries("ignore_word"), 1):
        r = _Reader(origin, f"ignore_word #{i}", raw, {"word", "source"})
        word = r.text("word")
        if normalize_header(word) != word:
            r.fail(f"'word' must be one lower-case word of letters or digits, got {word!r}")
        ignore_words.append(IgnoreWord(word, r.text("source")))
    ignore_set = {w.word for w in ignore_words}

    # fields
    fields: list[FieldSpec] = []
    header_owner: dict[str, str] = {}
    for i, raw in enumerate(entries("field"), 1):
        r = _Reader(
            origin, f"field #{i}", raw, {"name", "kind", "description", "headers", "source"}
        )
        name = r.text("name")
        r.where = f"field '{name}'"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            r.fail("name must be snake_case letters, digits and underscores")
        if any(f.name == name for f in fields):
            r.fail("is defined twice")
        kind = r.text("kind")
        if kind not in FIELD_KINDS:
            r.fail(f"kind must be one of {', '.join(FIELD_KINDS)}, got {kind!r}")
        headers = r.texts("headers", required=False)
        for h in (name, *headers):
            norm = normalize_header(h, ignore_set)
            if not norm:
                r.fail(f"header {h!r} is empty once case, punctuation and ignored words go")
            owner = header_owner.setdefault(norm, name)
            if owner != name:
                r.fail(f"header {h!r} already belongs to field '{owner}'")
        fields.append(
            FieldSpec(name, kind, r.text("description", required=False), headers, r.text("source"))
        )
    kinds = {f.name: f.kind for f in fields}
    for required_field in ("account",):
        if required_field not in kinds:
            top.fail(f"field '{required_field}' is missing")
    if "customer_since" in kinds and "relationship_months" not in kinds:
        top.fail("field 'customer_since' needs field 'relationship_months'")

    # vocabularies
    vocabularies: list[VocabularyEntry] = []
    syn_owner: dict[tuple[str, str], str] = {}
    for i, raw in enumerate(entries("vocabulary"), 1):
        r = _Reader(origin, f"vocabulary #{i}", raw, {"field", "value", "synonyms", "source"})
        fname, value = r.text("field"), r.text("value")
        r.where = f"vocabulary '{fname}={value}'"
        if kinds.get(fname) != "category":
            r.fail(f"field '{fname}' is not a category field")
        if any(v.field == fname and v.value == value for v in vocabularies):
            r.fail("is defined twice")
        synonyms = r.texts("synonyms")
        for syn in (value, *synonyms):
            folded = fold_value(syn)
            owner = syn_owner.setdefault((fname, folded), value)
            if owner != value:
                r.fail(f"synonym {syn!r} already means '{owner}'")
        vocabularies.append(VocabularyEntry(fname, value, synonyms, r.text("source")))
    vocab_values = {(v.field, v.value) for v in vocabularies}

    def read_test(r: _Reader, fname: str) -> tuple[str, tuple[str, ...], str | None, float | None]:
        if fname not in kinds:
            r.fail(f"field '{fname}' is not defined")
        test = r.text("test")
        allowed = TESTS_FOR_KIND[kinds[fname]]
        if test not in allowed:
            if not allowed:
                r.fail(f"field '{fname}' ({kinds[fname]}) cannot be tested")
            r.fail(f"test must be {' or '.join(allowed)} for a {kinds[fname]} field, got {test!r}")
        keywords: tuple[str, ...] = ()
        value = None
        threshold = None
        if test == "contains_any":
            keywords = r.texts("keywords")
            for kw in keywords:
                bad = WILDCARDS & set(kw)
                if bad:
                    r.fail(f"keyword {kw!r} holds the wildcard {sorted(bad)[0]!r}")
                if kw != kw.lower():
                    r.fail(f"keyword {kw!r} must be lower-case")
        elif test == "is":
            value = r.text("value")
            if (fname, value) not in vocab_values:
                r.fail(f"value {value!r} is not in the vocabulary of field '{fname}'")
        else:
            threshold = r.number("threshold")
        for key, present in (
            ("keywords", bool(keywords)),
            ("value", value is not None),
            ("threshold", threshold is not None),
        ):
            if not present and r.raw.get(key) not in (None, "", []):
                r.fail(f"'{key}' does not apply to test '{test}'")
        return test, keywords, value, threshold

    # signals
    signals: list[Signal] = []
    ids: set[str] = set()
    for i, raw in enumerate(entries("signal"), 1):
        r = _Reader(
            origin,
            f"signal #{i}",
            raw,
            {
                "id",
                "field",
                "test",
                "keywords",
                "value",
                "threshold",
                "weight",
                "reason",
                "suppressed_by",
                "source",
            },
        )
        sid = r.text("id")
        r.where = f"signal '{sid}'"
        if sid in ids:
            r.fail("id is used twice")
        ids.add(sid)
        fname = r.text("field")
        test, keywords, value, threshold = read_test(r, fname)
        weight = r.number("weight")
        assert weight is not None
        if test == "at_least" and weight < 0:
            r.fail(
                f"an at_least signal must have weight >= 0 (more is more client-like), "
                f"got {weight:g}"
            )
        if test == "below" and weight > 0:
            r.fail(
                f"a below signal must have weight <= 0 (more is more client-like), got {weight:g}"
            )
        reason = r.text("reason")
        try:
            unknown = _placeholders(reason) - PLACEHOLDERS
        except ValueError as exc:
            r.fail(str(exc))
        if unknown:
            r.fail(
                f"reason uses unknown placeholder {{{sorted(unknown)[0]}}} "
                f"(allowed: {{value}}, {{match}})"
            )
        if "{match}" in reason and test != "contains_any":
            r.fail("reason uses {match} but the test is not contains_any")
        signals.append(
            Signal(
                sid,
                fname,
                test,
                weight,
                reason,
                r.text("source"),
                keywords,
                value,
                threshold,
                r.texts("suppressed_by", required=False),
            )
        )
    by_id = {s.id: s for s in signals}
    for s in signals:
        for other in s.suppressed_by:
            where = _fmt_path(origin, f"signal '{s.id}'")
            if other not in by_id:
                raise RulebookError(f"{where}: suppressed_by names unknown signal '{other}'")
            if s.weight > 0:
                raise RulebookError(f"{where}: only a signal with weight <= 0 can be suppressed")
            if by_id[other].weight <= 0:
                raise RulebookError(
                    f"{where}: suppressed_by '{other}' must be a signal with weight > 0"
                )

    # buyer rules
    buyer_rules: list[BuyerRule] = []
    for i, raw in enumerate(entries("buyer_rule"), 1):
        r = _Reader(
            origin,
            f"buyer_rule #{i}",
            raw,
            {"id", "field", "test", "keywords", "value", "threshold", "buyer_type", "source"},
        )
        bid = r.text("id")
        r.where = f"buyer_rule '{bid}'"
        if bid in ids:
            r.fail("id is used twice")
        ids.add(bid)
        test, keywords, value, threshold = read_test(r, r.text("field"))
        buyer_type = r.text("buyer_type")
        if buyer_type not in ("Consumer", "Business"):
            r.fail(f"buyer_type must be Consumer or Business, got {buyer_type!r}")
        buyer_rules.append(
            BuyerRule(
                bid, r.text("field"), test, buyer_type, r.text("source"), keywords, value, threshold
            )
        )

    # tips
    tips: list[Tip] = []
    for i, raw in enumerate(entries("tip"), 1):
        r = _Reader(
            origin, f"tip #{i}", raw, {"id", "kind", "title", "text", "addresses", "source"}
        )
        tid = r.text("id")
        r.where = f"tip '{tid}'"
        if tid in ids:
            r.fail("id is used twice")
        ids.add(tid)
        kind = r.text("kind")
        if kind not in TIP_KINDS:
            r.fail(f"kind must be conversion or retention, got {kind!r}")
        title = r.text("title")
        if ";" in title or "\n" in title:
            r.fail("title must not contain ';' or a line break (tips are listed with '; ')")
        addresses = r.texts("addresses")
        for sid in addresses:
            if sid not in by_id:
                r.fail(f"addresses unknown signal '{sid}'")
            if by_id[sid].weight <= 0:
                r.fail(f"addresses '{sid}', which is not a client signal (weight > 0)")
        tips.append(Tip(tid, kind, title, r.text("text"), addresses, r.text("source")))

    return Rulebook(
        name=top.text("name", required=False, default="Rulebook"),
        version=str(data.get("version", "1")),
        settings=settings,
        ignore_words=tuple(ignore_words),
        fields=tuple(fields),
        vocabularies=tuple(vocabularies),
        signals=tuple(signals),
        buyer_rules=tuple(buyer_rules),
        tips=tuple(tips),
    )


# ------------------------------------------------------------------------------ dict form
def rulebook_to_dict(rb: Rulebook) -> dict[str, Any]:
    """The dict form (what rulebook.toml holds); rulebook_from_dict(rulebook_to_dict(rb)) == rb."""

    def test_keys(entry: Signal | BuyerRule) -> dict[str, Any]:
        if entry.test == "contains_any":
            return {"keywords": list(entry.keywords)}
        if entry.test == "is":
            return {"value": entry.value}
        return {"threshold": entry.threshold}

    s = rb.settings
    return {
        "name": rb.name,
        "version": rb.version,
        "setting": [
            {"name": n, "value": getattr(s, n), "source": s.source_of(n)} for n in SETTING_NAMES
        ],
        "ignore_word": [{"word": w.word, "source": w.source} for w in rb.ignore_words],
        "field": [
            {
                "name": f.name,
                "kind": f.kind,
                "description": f.description,
                "headers": list(f.headers),
                "source": f.source,
            }
            for f in rb.fields
        ],
        "vocabulary": [
            {"field": v.field, "value": v.value, "synonyms": list(v.synonyms), "source": v.source}
            for v in rb.vocabularies
        ],
        "signal": [
            {
                "id": g.id,
                "field": g.field,
                "test": g.test,
                **test_keys(g),
                "weight": g.weight,
                "reason": g.reason,
                "suppressed_by": list(g.suppressed_by),
                "source": g.source,
            }
            for g in rb.signals
        ],
        "buyer_rule": [
            {
                "id": b.id,
                "field": b.field,
                "test": b.test,
                **test_keys(b),
                "buyer_type": b.buyer_type,
                "source": b.source,
            }
            for b in rb.buyer_rules
        ],
        "tip": [
            {
                "id": t.id,
                "kind": t.kind,
                "title": t.title,
                "text": t.text,
                "addresses": list(t.addresses),
                "source": t.source,
            }
            for t in rb.tips
        ],
    }


# ------------------------------------------------------------------------------ sheet form
def rulebook_to_rows(rb: Rulebook) -> list[list[Any]]:
    """The rulebook as one table (header row first), the form of the exported Rules sheet."""
    rows: list[list[Any]] = [list(SHEET_COLUMNS)]

    def row(
        section: str,
        id_: str = "",
        field_: str = "",
        test: str = "",
        value: Any = "",
        weight: Any = "",
        text: str = "",
        links: Sequence[str] = (),
        source: str = "",
    ) -> None:
        rows.append([section, id_, field_, test, value, weight, text, ", ".join(links), source])

    row("meta", "name", value=rb.name)
    row("meta", "version", value=rb.version)
    s = rb.settings
    for n in SETTING_NAMES:
        row("setting", n, value=getattr(s, n), source=s.source_of(n))
    for w in rb.ignore_words:
        row("ignore_word", value=w.word, source=w.source)
    for f in rb.fields:
        row("field", f.name, test=f.kind, text=f.description, source=f.source)
        for h in f.headers:
            row("header", f.name, value=h)
    for v in rb.vocabularies:
        row("vocabulary", v.value, v.field, source=v.source)
        for syn in v.synonyms:
            row("synonym", v.value, v.field, value=syn)
    for g in rb.signals:
        row(
            "signal",
            g.id,
            g.field,
            g.test,
            _test_value(g),
            g.weight,
            g.reason,
            g.suppressed_by,
            g.source,
        )
        for kw in g.keywords:
            row("keyword", g.id, g.field, value=kw)
    for b in rb.buyer_rules:
        row("buyer_rule", b.id, b.field, b.test, _test_value(b), text=b.buyer_type, source=b.source)
        for kw in b.keywords:
            row("keyword", b.id, b.field, value=kw)
    for t in rb.tips:
        row(
            "tip", t.id, test=t.kind, value=t.title, text=t.text, links=t.addresses, source=t.source
        )
    return rows


def _test_value(entry: Signal | BuyerRule) -> Any:
    if entry.test == "is":
        return entry.value
    if entry.test in ("at_least", "below"):
        return entry.threshold
    return ""


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rulebook_from_rows(rows: Sequence[Sequence[Any]], origin: str = "Rules sheet") -> Rulebook:
    """Read the sheet form back (cells as a 2D list, e.g. from Excel or openpyxl)."""
    rows = [list(r) for r in rows]
    header_at = None
    for i, r in enumerate(rows[:20]):
        if [_cell_text(c).strip().lower() for c in r[: len(SHEET_COLUMNS)]] == list(SHEET_COLUMNS):
            header_at = i
            break
    if header_at is None:
        raise RulebookError(
            f"{origin}: no header row with the columns {', '.join(SHEET_COLUMNS)} in the first "
            "20 rows (export one with 'relationship rules export')"
        )
    data: dict[str, Any] = {
        k: []
        for k in ("setting", "ignore_word", "field", "vocabulary", "signal", "buyer_rule", "tip")
    }
    owners: dict[str, dict[str, Any]] = {}
    vocab: dict[tuple[str, str], dict[str, Any]] = {}
    fields: dict[str, dict[str, Any]] = {}
    for n, r in enumerate(rows[header_at + 1 :], start=header_at + 2):
        cells = (r + [None] * len(SHEET_COLUMNS))[: len(SHEET_COLUMNS)]
        section, id_, fname, test, value, weight, text, links, source = cells
        section_s = _cell_text(section).strip()
        if not section_s and all(_cell_text(c).strip() == "" for c in cells):
            continue
        id_s, fname_s, test_s = (
            _cell_text(id_).strip(),
            _cell_text(fname).strip(),
            _cell_text(test).strip(),
        )
        value_s, text_s, source_s = _cell_text(value), _cell_text(text), _cell_text(source)
        link_list = [x.strip() for x in _cell_text(links).split(",") if x.strip()]
        where = f"{origin} row {n}"
        if section_s == "meta":
            if id_s in ("name", "version"):
                data[id_s] = value_s
            continue
        if section_s == "setting":
            data["setting"].append(
                {"name": id_s, "value": _number_cell(value, where, "value"), "source": source_s}
            )
        elif section_s == "ignore_word":
            data["ignore_word"].append({"word": value_s, "source": source_s})
        elif section_s == "field":
            fields[id_s] = {
                "name": id_s,
                "kind": test_s,
                "description": text_s,
                "headers": [],
                "source": source_s,
            }
            data["field"].append(fields[id_s])
        elif section_s == "header":
            if id_s not in fields:
                raise RulebookError(f"{where}: header for field '{id_s}' comes before the field")
            fields[id_s]["headers"].append(value_s)
        elif section_s == "vocabulary":
            entry = {"field": fname_s, "value": id_s, "synonyms": [], "source": source_s}
            vocab[(fname_s, id_s)] = entry
            data["vocabulary"].append(entry)
        elif section_s == "synonym":
            if (fname_s, id_s) not in vocab:
                raise RulebookError(
                    f"{where}: synonym for '{fname_s}={id_s}' comes before its vocabulary row"
                )
            vocab[(fname_s, id_s)]["synonyms"].append(value_s)
        elif section_s in ("signal", "buyer_rule"):
            entry = {"id": id_s, "field": fname_s, "test": test_s, "source": source_s}
            if test_s == "is":
                entry["value"] = value_s
            elif test_s in ("at_least", "below"):
                entry["threshold"] = _number_cell(value, where, "value")
            if section_s == "signal":
                entry.update(
                    weight=_number_cell(weight, where, "weight"),
                    reason=text_s,
                    suppressed_by=link_list,
                )
            else:
                entry["buyer_type"] = text_s
            owners[id_s] = entry
            data[section_s].append(entry)
        elif section_s == "keyword":
            if id_s not in owners:
                raise RulebookError(f"{where}: keyword for '{id_s}' comes before its rule row")
            owners[id_s].setdefault("keywords", []).append(value_s)
        elif section_s == "tip":
            data["tip"].append(
                {
                    "id": id_s,
                    "kind": test_s,
                    "title": value_s,
                    "text": text_s,
                    "addresses": link_list,
                    "source": source_s,
                }
            )
        else:
            raise RulebookError(f"{where}: unknown section {section_s!r}")
    return rulebook_from_dict(data, origin)


def _number_cell(value: Any, where: str, column: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise RulebookError(f"{where}: '{column}' must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise RulebookError(f"{where}: '{column}' must be a number, got {value!r}") from None


# ------------------------------------------------------------------------------ files
def load_rulebook(source: str | Path | Mapping[str, Any] | Rulebook | None = None) -> Rulebook:
    """Load a rulebook: None (the default), a Rulebook, a dict, or a .toml/.json/.xlsx file."""
    if source is None:
        return default_rulebook()
    if isinstance(source, Rulebook):
        return source
    if isinstance(source, Mapping):
        return rulebook_from_dict(source, "rulebook")
    path = Path(source)
    origin = str(path)
    if not path.is_file():
        raise RulebookError(f"{origin}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with path.open("rb") as fh:
                return rulebook_from_dict(tomllib.load(fh), origin)
        if suffix == ".json":
            return rulebook_from_dict(json.loads(path.read_text(encoding="utf-8")), origin)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RulebookError(f"{origin}: not valid {suffix[1:].upper()} ({exc})") from None
    if suffix in (".xlsx", ".xlsm"):
        return _load_rules_workbook(path)
    raise RulebookError(f"{origin}: a rulebook must be a .toml, .json, .xlsx or .xlsm file")


def _load_rules_workbook(path: Path) -> Rulebook:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise RulebookError(f"{path}: cannot open the workbook ({exc})") from None
    try:
        names = wb.sheetnames
        ordered = [n for n in names if n.lower() == SHEET_NAME.lower()] + [
            n for n in names if n.lower() != SHEET_NAME.lower()
        ]
        first_error: RulebookError | None = None
        for name in ordered:
            rows = [list(r) for r in wb[name].iter_rows(values_only=True)]
            try:
                return rulebook_from_rows(rows, f"{path} sheet '{name}'")
            except RulebookError as exc:
                if name.lower() == SHEET_NAME.lower():
                    raise
                first_error = first_error or exc
        raise RulebookError(f"{path}: no sheet holds a rulebook (name one '{SHEET_NAME}')")
    finally:
        wb.close()


def export_rulebook(rb: Rulebook, path: str | Path) -> Path:
    """Write the rulebook as an editable 'Rules' sheet (.xlsx), or as .toml/.json by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(
            json.dumps(rulebook_to_dict(rb), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return path
    if suffix not in (".xlsx", ".xlsm"):
        raise RulebookError(f"{path}: export writes .xlsx or .json")
    wb = rules_workbook(rb)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        wb.save(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def rules_workbook(rb: Rulebook):  # -> openpyxl.Workbook
    """A new workbook holding the Rules sheet (also used by the planning templates)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    write_rules_sheet(rb, ws)
    return wb


def write_rules_sheet(rb: Rulebook, ws) -> None:  # ws: openpyxl Worksheet
    """Fill an openpyxl worksheet with the rulebook table (header in row 1)."""
    from openpyxl.styles import Alignment, Font, PatternFill

    ws.title = SHEET_NAME
    for r in rulebook_to_rows(rb):
        ws.append(r)
    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor="305496")
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
    for col, width in zip("ABCDEFGHI", (12, 26, 20, 13, 34, 9, 60, 30, 70), strict=True):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2, min_col=5, max_col=5):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # keep "1", "0" synonyms as text
                cell.alignment = Alignment(horizontal="left")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:I{ws.max_row}"


@lru_cache(maxsize=1)
def default_rulebook() -> Rulebook:
    """The rulebook shipped with the package (loaded once per process)."""
    ref = resources.files("relationships").joinpath("rulebook.toml")
    with ref.open("rb") as fh:
        return rulebook_from_dict(tomllib.load(fh), "rulebook.toml (default)")
