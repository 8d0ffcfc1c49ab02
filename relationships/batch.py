"""Classify files from a script: CSV (and, with xlsxio, workbooks) in, results out.

Every file gets a :class:`FileReport`; one bad file never stops a batch. Inputs are never
written to; outputs are written to a temporary file beside the target and renamed into place,
and an existing output is only replaced with ``force=True``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from relationships import engine
from relationships.engine import RESULT_COLUMNS, Classification, classify_detailed
from relationships.errors import InputError, OutputExistsError, RelationshipError
from relationships.files import atomic_write
from relationships.rulebook import Rulebook, load_rulebook

CSV_SUFFIXES = {".csv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm"}
SUPPORTED = CSV_SUFFIXES | WORKBOOK_SUFFIXES
# Text a spreadsheet would run as a formula when it opens a file (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
ILLEGAL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAP_REMEDY = "map a header to a field: --map 'Header=field'"


@dataclass
class FileReport:
    """What happened to one input file."""

    input: str
    verdict: str = "pending"  # "ok", "failed" or "refused"
    reason: str = ""
    output: str | None = None
    sheet: str | None = None
    table: str | None = None
    header_row: int | None = None
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    buyer_counts: dict[str, int] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclass
class BatchReport:
    """Per-file reports of one run; ``ok`` when every file succeeded."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": [asdict(f) for f in self.files]}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
        atomic_write_bytes(path, text.encode("utf-8"), force=True)
        return path


# ------------------------------------------------------------------------------ helpers
def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files, folders (their supported files, sorted) and globs, in the order given."""
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if any(ch in text for ch in "*?["):
            base = Path(path.anchor) if path.is_absolute() else Path(".")
            pattern = str(path.relative_to(path.anchor)) if path.is_absolute() else text
            matches = sorted(p for p in base.glob(pattern) if p.is_file())
            if not matches:
                raise InputError(f"{text}: no file matches this pattern")
            found.extend(matches)
        elif path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file()
                    and p.suffix.lower() in SUPPORTED
                    and ".classified." not in p.name
                    and not p.name.startswith("~$")
                )
            )
        else:
            found.append(path)
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def default_output(path: Path, out_dir: Path | None = None) -> Path:
    suffix = path.suffix.lower()
    name = f"{path.stem}.classified{suffix if suffix in SUPPORTED else '.csv'}"
    return (out_dir or path.parent) / name


def check_output(src: Path, dst: Path, force: bool) -> None:
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst}: the output would overwrite the input; choose another --out")
    if dst.exists() and not force:
        raise OutputExistsError(f"{dst}: exists already (use --force to replace it)")


def atomic_write_bytes(dst: Path, data: bytes, *, force: bool) -> None:
    atomic_write(dst, lambda fh: fh.write(data), force=force)


def safe_text(value: Any) -> Any:
    """Text that a spreadsheet could run as a formula, defused with a leading apostrophe."""
    if isinstance(value, str):
        value = ILLEGAL_CHARS.sub("", value)
        if value.startswith(FORMULA_TRIGGERS) and not _NUMBER.match(value.strip()):
            return "'" + value
    return value


def result_column_names(existing: Sequence[Any]) -> dict[str, str]:
    """Result column -> output header, renamed with a suffix where the input has that header."""
    taken = {str(c) for c in existing}
    names = {}
    for col in RESULT_COLUMNS:
        name, k = col, 2
        while name in taken:
            name, k = f"{col}_{k}", k + 1
        taken.add(name)
        names[col] = name
    return names


def summarize(report: FileReport, result: Classification) -> None:
    res = result.results
    report.rows = len(res)
    report.counts = {k: int(v) for k, v in res["relationship_type"].value_counts().items()}
    report.buyer_counts = {k: int(v) for k, v in res["buyer_type"].value_counts().items()}
    report.mapping = result.mapping.describe()


# ------------------------------------------------------------------------------ CSV
def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV with every cell as text, exactly as written (nothing inferred or lost)."""
    last: Exception | None = None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding=encoding,
                sep=None if non_comma_separated(path) else ",",
                engine="python" if non_comma_separated(path) else "c",
            )
        except UnicodeDecodeError as exc:
            last = exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
            raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    raise InputError(f"{path}: not UTF-8 or Windows-1252 text ({last})")


def non_comma_separated(path: Path) -> bool:
    """True when the file looks semicolon- or tab-separated (European Excel exports)."""
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").splitlines()[:1]
    if not head:
        return False
    line = head[0]
    return line.count(";") > line.count(",") or line.count("\t") > line.count(",")


def classify_csv(
    src: Path,
    dst: Path,
    rulebook: Rulebook,
    *,
    as_of: dt.date | str | None,
    mapping: Mapping[str, str] | None,
    force: bool,
    report: FileReport,
) -> None:
    t0 = time.perf_counter()
    frame = read_csv(src)
    t1 = time.perf_counter()
    result = classify_detailed(frame, rulebook, as_of=as_of, mapping=mapping)
    require_fields(src, result)
    t2 = time.perf_counter()
    names = result_column_names(frame.columns)
    out = frame.copy()
    for col in RESULT_COLUMNS:
        out[names[col]] = result.results[col]
    text_cols = [
        c
        for c in out.columns
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c].dtype)
    ]
    for c in text_cols:
        out[c] = out[c].map(safe_text)
    atomic_write(dst, lambda fh: out.to_csv(fh, index=False), force=force, text=True)
    t3 = time.perf_counter()
    summarize(report, result)
    report.problems = [
        {
            "sheet": None,
            "cell": None,
            "row": int(r.row) + 2,
            "column": r.column,
            "field": r.field,
            "value": r.value,
            "why": r.why,
        }
        for r in result.problems.itertuples(index=False)
    ]
    report.timings = {"read": t1 - t0, "classify": t2 - t1, "write": t3 - t2}


def require_fields(src: Path, result: Classification) -> None:
    """InputError naming the file unless some column feeds a relationship field."""
    engine.require_fields(result.mapping, str(src), MAP_REMEDY)


# ------------------------------------------------------------------------------ batch
def classify_file(
    path: str | Path,
    *,
    out: str | Path | None = None,
    out_dir: str | Path | None = None,
    rules: Rulebook | str | Path | None = None,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
    force: bool = False,
    results_only: bool = False,
) -> FileReport:
    """Classify one file; failures are reported in the FileReport, never raised."""
    src = Path(path)
    report = FileReport(input=str(src))
    try:
        rulebook = load_rulebook(rules)
        if not src.is_file():
            raise InputError(f"{src}: no such file")
        suffix = src.suffix.lower()
        if suffix not in SUPPORTED:
            raise InputError(f"{src}: not a .csv, .xlsx or .xlsm file")
        dst = Path(out) if out else default_output(src, Path(out_dir) if out_dir else None)
        check_output(src, dst, force)
        dst.parent.mkdir(parents=True, exist_ok=True)
        report.output = str(dst)
        if suffix in CSV_SUFFIXES:
            classify_csv(
                src, dst, rulebook, as_of=as_of, mapping=mapping, force=force, report=report
            )
        else:
            from relationships import workbook_batch

            workbook_batch.classify_workbook(
                src,
                dst,
                rulebook,
                as_of=as_of,
                mapping=mapping,
                sheet=sheet,
                header_row=header_row,
                force=force,
                results_only=results_only,
                report=report,
            )
        report.verdict = "ok"
    except RelationshipError as exc:
        report.verdict = "refused" if _is_refusal(exc) else "failed"
        report.reason = str(exc)
        report.output = None
    except (OSError, MemoryError, ValueError) as exc:
        report.verdict = "failed"
        report.reason = f"{src}: {type(exc).__name__}: {exc}"
        report.output = None
    return report


def _is_refusal(exc: Exception) -> bool:
    from relationships.errors import LossyWorkbookError, UnsafeWorkbookError

    return isinstance(exc, UnsafeWorkbookError | LossyWorkbookError)


def classify_files(
    inputs: Iterable[str | Path],
    *,
    out: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[FileReport], None] | None = None,
    **options: Any,
) -> BatchReport:
    """Classify many files (files, folders, globs); returns a BatchReport."""
    paths = expand_inputs(inputs)
    if out and len(paths) != 1:
        raise InputError(f"--out names one file but {len(paths)} inputs were given; use --out-dir")
    report = BatchReport()
    for p in paths:
        file_report = classify_file(p, out=out, out_dir=out_dir, **options)
        report.files.append(file_report)
        if progress:
            progress(file_report)
    return report
