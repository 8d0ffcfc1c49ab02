"""Big inputs: stream CSV/Parquet through the engine in chunks, or run it on Dask.

A *dataset* is one CSV or Parquet file, or a folder (or glob) of parts of one kind with the
same columns, read in natural order (part.2 before part.10). Every path here runs the
unchanged, pure :func:`relationships.engine.classify` on one piece at a time, with the
rulebook loaded and the as-of date resolved once, so the pieces agree with one another and
with a whole-frame run, row for row.

- ``engine="pandas"`` (the chunk loop): pieces of ``chunk_rows`` rows are read, classified,
  rendered and appended to the output one at a time; memory is bounded by one piece, not by
  the input (plus, for Parquet, the row group pyarrow is decoding).
- ``engine="dask"``: the dataset becomes a Dask DataFrame (one partition per CSV block or
  Parquet row group) and ``map_partitions`` runs the engine on a ``distributed`` cluster: a
  local one on loopback by default, or the scheduler given. The rulebook is scattered to the
  workers once.

Output: ``.csv`` (one file, text defused like :mod:`relationships.batch` does), ``.parquet``
(one file) or any other name (a folder of ``part.NNNNN.parquet`` files). Single files are
written by the caller's process through a temporary file renamed into place; folder parts are
written by whoever classified them (a Dask worker, or this process) into a temporary folder
that is renamed into place when every part is there. Columns: the input's, then the result
columns (renamed on a clash, as the batch path does). A stored pandas index (Parquet) is
carried through; a RangeIndex is positional, kept as row order and not stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from relationships.batch import (
    FORMULA_TRIGGERS,
    ILLEGAL_CHARS,
    BatchReport,
    FileReport,
    check_output,
    non_comma_separated,
    require_fields,
    result_column_names,
    safe_text,
)
from relationships.engine import RESULT_COLUMNS, _as_date, classify, classify_detailed
from relationships.errors import InputError, OutputExistsError, RelationshipError
from relationships.files import atomic_write, umask
from relationships.rulebook import Rulebook, load_rulebook

if TYPE_CHECKING:
    import dask.dataframe as dd
    import distributed
    import pyarrow as pa

Engine = Literal["pandas", "dask"]
ENGINES: tuple[str, ...] = ("pandas", "dask")
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
ENCODINGS = ("utf-8-sig", "cp1252")  # as relationships.batch.read_csv tries them
DEFAULT_CHUNK_ROWS = 100_000
# A CSV larger than this goes through the chunk loop rather than being read whole.
LARGE_CSV_BYTES = 256 * 2**20
DASK_MISSING = (
    "--engine dask needs the optional Dask extra: pip install 'relationship-addin[dask]' "
    "(from a checkout: pip install -e '.[dask]')"
)
PYARROW_MISSING = (
    "reading or writing Parquet needs pyarrow: pip install pyarrow "
    "(or the Dask extra: pip install 'relationship-addin[dask]')"
)
DASK_CSV_BLOCKS = (
    "Dask splits a CSV file into blocks at line breaks, which fails when a quoted cell holds "
    "a line break: classify it without --engine dask, or convert it to Parquet first"
)
SCHEDULER_TIMEOUT = "10s"  # to connect to a --scheduler
_PART_NAME = re.compile(r"^part\.\d+\.parquet$")

# progress(dataset name, rows done, fraction done or None when unknown)
Progress = Callable[[str, int, float | None], None]
OutputForm = Literal["csv", "parquet", "folder"]


# ------------------------------------------------------------------------------ datasets
@dataclass(frozen=True)
class Dataset:
    """One logical input: a file, or the parts of a folder or glob, in order."""

    name: str
    kind: Literal["csv", "parquet"]
    parts: tuple[Path, ...]
    folder: Path | None = None  # the folder named, when one was

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.parts)


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _kind_of(path: Path) -> Literal["csv", "parquet"] | None:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    return None


def _is_part(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and _kind_of(path) is not None
        and not name.startswith((".", "_", "~$"))
        and ".classified." not in name
    )


def open_dataset(item: str | Path) -> Dataset:
    """The dataset named by a file, a folder of parts or a glob; InputError when unusable."""
    text = str(item)
    path = Path(text)
    folder: Path | None = None
    if any(ch in text for ch in "*?["):
        base = Path(path.anchor) if path.is_absolute() else Path(".")
        pattern = str(path.relative_to(path.anchor)) if path.is_absolute() else text
        parts = [p for p in base.glob(pattern) if _is_part(p)]
        if not parts:
            raise InputError(f"{text}: no .csv or .parquet file matches this pattern")
    elif path.is_dir():
        folder = path
        parts = [p for p in path.iterdir() if _is_part(p)]
        if not parts:
            raise InputError(f"{text}: the folder holds no .csv or .parquet files")
    elif path.is_file():
        if _kind_of(path) is None:
            raise InputError(
                f"{text}: big inputs and --engine dask read .csv and .parquet files only "
                "(classify workbooks without --engine dask)"
            )
        parts = [path]
    else:
        raise InputError(f"{text}: no such file or folder")
    kinds = {_kind_of(p) for p in parts}
    if len(kinds) > 1:
        raise InputError(f"{text}: holds both CSV and Parquet files; name one kind with a glob")
    parts.sort(key=_natural_key)
    return Dataset(text, kinds.pop(), tuple(parts), folder)  # type: ignore[arg-type]


def wants_scale_path(
    inputs: Iterable[str | Path],
    *,
    engine: str = "pandas",
    scheduler: str | None = None,
    chunk_rows: int | None = None,
    threshold: int = LARGE_CSV_BYTES,
) -> bool:
    """True when a run belongs on this module's paths rather than relationships.batch.

    That is: --engine dask, --scheduler or --chunk-rows given, a Parquet input (a file, or a
    folder or glob holding Parquet parts), or a CSV file larger than ``threshold`` bytes.
    A folder of CSV files stays on the batch path (one output per file) unless one of the
    options asks for this one, which treats the folder as the parts of one dataset.
    """
    if engine != "pandas" or scheduler is not None or chunk_rows is not None:
        return True
    for item in inputs:
        text = str(item)
        path = Path(text)
        if any(ch in text for ch in "*?[") or path.is_dir():
            try:
                if open_dataset(text).kind == "parquet":
                    return True
            except InputError:
                continue
        elif _kind_of(path) == "parquet" or (
            _kind_of(path) == "csv" and path.is_file() and path.stat().st_size > threshold
        ):
            return True
    return False


# ------------------------------------------------------------------------------ outputs
@dataclass(frozen=True)
class Target:
    """Where one dataset's results go and in which form."""

    path: Path
    form: OutputForm


def target_for(ds: Dataset, out: str | Path | None, out_dir: str | Path | None) -> Target:
    """--out decides by its suffix (.csv, .parquet, else a folder); else a name beside/in."""
    if out is not None:
        path = Path(out)
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return Target(path, "csv")
        if suffix in PARQUET_SUFFIXES:
            return Target(path, "parquet")
        return Target(path, "folder")
    if ds.folder is None and len(ds.parts) != 1:
        raise InputError(f"{ds.name}: name the output of a glob with --out")
    source = ds.folder if ds.folder is not None else ds.parts[0]
    where = Path(out_dir) if out_dir is not None else source.parent
    if ds.kind == "csv":
        return Target(where / f"{source.stem}.classified.csv", "csv")
    if ds.folder is not None:
        return Target(where / f"{source.name}.classified", "folder")
    return Target(where / f"{source.stem}.classified.parquet", "parquet")


def _check_target(ds: Dataset, target: Target, force: bool) -> None:
    for part in ds.parts:
        check_output(part, target.path, force)
    dst = target.path.resolve()
    if ds.folder is not None and dst.is_relative_to(ds.folder.resolve()):
        raise InputError(f"{target.path}: the output would land inside the input folder")
    for part in ds.parts:
        if target.form == "folder" and part.resolve().is_relative_to(dst):
            raise InputError(f"{target.path}: replacing it would delete the input {part}")
    if target.form == "folder" and target.path.is_dir():
        strangers = [p.name for p in target.path.iterdir() if not _PART_NAME.match(p.name)]
        if strangers:
            raise OutputExistsError(
                f"{target.path}: holds files that are not result parts ({strangers[0]}); "
                "choose a new folder"
            )


@contextmanager
def _folder_in_place(dst: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary folder beside ``dst``; rename it into place when the block ends."""
    if (dst.exists() or dst.is_symlink()) and not force:
        raise OutputExistsError(f"{dst}: exists already (use --force to replace it)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; outputs get the usual mode
        yield tmp
        if dst.exists() or dst.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
            os.replace(dst, old / dst.name)
            os.replace(tmp, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def part_name(number: int) -> str:
    """The file name of one part of a folder output; zero-padded so names sort in order."""
    return f"part.{number:05d}.parquet"


# ------------------------------------------------------------------------------ rendering
@dataclass(frozen=True)
class RenderSpec:
    """How a classified piece becomes output: small, picklable, the same for every piece."""

    as_of: dt.date
    mapping: dict[str, str] | None
    names: dict[str, str]  # result column -> output header
    form: Literal["csv", "parquet"]
    index: bool = False  # write the frame's index (a stored pandas index from Parquet)
    schema: pa.Schema | None = None  # Parquet: the output schema, input types kept


@dataclass
class Rendered:
    """One piece of output and what it holds."""

    payload: Any  # CSV text without header, a pyarrow Table, or None (written already)
    rows: int
    counts: dict[str, int]
    buyer_counts: dict[str, int]
    warned: int  # rows with a non-empty warnings cell


def classified(frame: pd.DataFrame, rulebook: Rulebook, spec: RenderSpec) -> pd.DataFrame:
    """The input piece with the result columns appended (same index, same order)."""
    results = classify(frame, rulebook, as_of=spec.as_of, mapping=spec.mapping)
    out = frame.copy()
    for col in RESULT_COLUMNS:
        out[spec.names[col]] = results[col]
    return out


def defuse(series: pd.Series) -> pd.Series:
    """``series.map(safe_text)``, calling it only on cells that it could change."""
    try:
        text = series.str
    except AttributeError:  # no text at all in an object column
        return series.map(safe_text)
    risky = text.startswith(FORMULA_TRIGGERS) | text.contains(ILLEGAL_CHARS.pattern, regex=True)
    risky = risky.fillna(False).astype(bool)
    if not risky.any():
        return series
    out = series.copy()
    out[risky] = series[risky].map(safe_text)
    return out


def _csv_ready(out: pd.DataFrame) -> pd.DataFrame:
    # The same text columns as relationships.batch.classify_csv defuses.
    out = out.copy(deep=False)
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c].dtype):
            out[c] = defuse(out[c])
    return out


def csv_header(meta: pd.DataFrame, spec: RenderSpec) -> str:
    """The CSV header line of the output (``meta``: an empty classified frame)."""
    return meta.iloc[:0].to_csv(index=spec.index)


def arrow_table(out: pd.DataFrame, spec: RenderSpec) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pandas(out, schema=spec.schema, preserve_index=spec.index)


def render(out: pd.DataFrame, spec: RenderSpec) -> Rendered:
    """A classified piece as CSV text (no header) or an Arrow table, and its counts."""
    if spec.form == "csv":
        payload: Any = _csv_ready(out).to_csv(index=spec.index, header=False)
    else:
        payload = arrow_table(out, spec)
    return _summarized(out, spec, payload)


def write_part(out: pd.DataFrame, path: str, spec: RenderSpec) -> Rendered:
    """Write a classified piece as one Parquet part file (run where the piece is)."""
    import pyarrow.parquet as pq

    pq.write_table(arrow_table(out, spec), path)
    return _summarized(out, spec, None)


def _summarized(out: pd.DataFrame, spec: RenderSpec, payload: Any) -> Rendered:
    names = spec.names
    return Rendered(
        payload=payload,
        rows=len(out),
        counts=_value_counts(out[names["relationship_type"]]),
        buyer_counts=_value_counts(out[names["buyer_type"]]),
        warned=int((out[names["warnings"]] != "").sum()),
    )


def _value_counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts(sort=False).items()}


def _classify_render(
    frame: pd.DataFrame, rulebook: Rulebook, spec: RenderSpec, folder: Path | None, number: int
) -> Rendered:
    out = classified(frame, rulebook, spec)
    if folder is not None:
        return write_part(out, str(folder / part_name(number)), spec)
    return render(out, spec)


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    sep: str


def _csv_sep(path: Path, encoding: str) -> str:
    """The delimiter, decided like relationships.batch.read_csv (pandas sniffs line 1)."""
    if not non_comma_separated(path):
        return ","
    with path.open(encoding=encoding, newline="") as fh:
        line = fh.readline()
    try:
        return csv.Sniffer().sniff(line).delimiter
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def _read_csv_args(fmt: CsvFormat) -> dict[str, Any]:
    return {
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": fmt.encoding,
        "sep": fmt.sep,
    }


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def csv_meta(ds: Dataset, fmt: CsvFormat) -> pd.DataFrame:
    """An empty frame with the dataset's header; every part must have the same header."""
    heads = []
    for part in ds.parts:
        with _csv_errors(part):
            heads.append(pd.read_csv(part, nrows=0, **_read_csv_args(fmt)))
        if list(heads[-1].columns) != list(heads[0].columns):
            raise InputError(
                f"{part}: its columns differ from those of {ds.parts[0].name}; "
                "the parts of one dataset must share one header"
            )
    return heads[0]


def iter_csv_chunks(
    ds: Dataset,
    fmt: CsvFormat,
    chunk_rows: int,
    on_progress: Callable[[int, float | None], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The dataset's rows, ``chunk_rows`` at a time, every cell as text, with a running
    RangeIndex; the previous chunk is released before the next one is read."""
    total = ds.nbytes or 1
    before = 0
    offset = 0
    for part in ds.parts:
        with part.open("rb") as fh, _csv_errors(part):
            reader = pd.read_csv(fh, chunksize=chunk_rows, **_read_csv_args(fmt))
            with reader:
                for chunk in reader:
                    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                    offset += len(chunk)
                    yield chunk
                    del chunk
                    if on_progress is not None:
                        on_progress(offset, min(1.0, (before + fh.tell()) / total))
        before += part.stat().st_size


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(PYARROW_MISSING) from None
    return pa, pq


def _index_columns(schema: pa.Schema) -> list[str]:
    """Columns that hold a stored pandas index (not a RangeIndex, which is metadata)."""
    meta = schema.pandas_metadata or {}
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)]


@dataclass(frozen=True)
class ParquetInfo:
    schema: pa.Schema  # of the first part, metadata included
    rows: int


def parquet_info(ds: Dataset) -> ParquetInfo:
    """The first part's schema and the row count of all parts (footers only); every part
    must have the same columns and types."""
    _, pq = _pyarrow()
    schemas = []
    rows = 0
    for part in ds.parts:
        try:
            meta = pq.read_metadata(part)
        except (OSError, ValueError) as exc:
            raise InputError(f"{part}: not a readable Parquet file ({exc})") from None
        schemas.append(meta.schema.to_arrow_schema())
        rows += meta.num_rows
        if not schemas[-1].remove_metadata().equals(schemas[0].remove_metadata()):
            raise InputError(
                f"{part}: its columns differ from those of {ds.parts[0].name}; "
                "the parts of one dataset must share one schema"
            )
    return ParquetInfo(schemas[0], rows)


def parquet_meta(info: ParquetInfo) -> pd.DataFrame:
    frame = info.schema.empty_table().to_pandas()
    if not _index_columns(info.schema):
        frame.index = pd.RangeIndex(0)
    return frame


def _parquet_tables(pf: Any, chunk_rows: int) -> Iterator[pa.Table]:
    """A Parquet file as tables of ``chunk_rows`` rows (the last may be shorter).

    Reads one row group at a time: a single ``iter_batches`` over a whole file keeps
    allocating as it goes (apache/arrow#39808 and kin; 1 MB per 100,000 rows measured with
    pyarrow 26), so memory would grow with the input.
    """
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    rows = 0
    for group in range(pf.num_row_groups):
        for batch in pf.iter_batches(
            batch_size=chunk_rows, row_groups=[group], use_pandas_metadata=True
        ):
            pending.append(batch)
            rows += batch.num_rows
            del batch
            while rows >= chunk_rows:
                table = pa.Table.from_batches(pending)
                rest = table.slice(chunk_rows)
                pending, rows = rest.to_batches(), rest.num_rows
                yield table.slice(0, chunk_rows)
                del table, rest
    if rows:
        yield pa.Table.from_batches(pending)


def iter_parquet_chunks(
    ds: Dataset,
    chunk_rows: int,
    on_progress: Callable[[int, float | None], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The dataset's rows, ``chunk_rows`` at a time, a stored pandas index restored, else a
    running RangeIndex; the previous chunk is released before the next one is read."""
    _, pq = _pyarrow()
    total = parquet_info(ds).rows or 1
    offset = 0
    for part in ds.parts:
        with pq.ParquetFile(part) as pf:
            stored_index = bool(_index_columns(pf.schema_arrow))
            for table in _parquet_tables(pf, chunk_rows):
                chunk = table.to_pandas()
                del table
                if not stored_index:
                    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                offset += len(chunk)
                yield chunk
                del chunk
                if on_progress is not None:
                    on_progress(offset, min(1.0, offset / total))


# ------------------------------------------------------------------------------ the job
@dataclass
class Summary:
    """Counts over every piece of a dataset."""

    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    buyer_counts: Counter[str] = field(default_factory=Counter)
    warned: int = 0
    pieces: int = 0

    def add(self, piece: Rendered) -> None:
        self.rows += piece.rows
        self.counts.update(piece.counts)
        self.buyer_counts.update(piece.buyer_counts)
        self.warned += piece.warned
        self.pieces += 1


@dataclass
class _Plan:
    """Everything decided on the client before any row is classified."""

    ds: Dataset
    target: Target
    spec: RenderSpec
    meta_out: pd.DataFrame  # an empty classified frame: header and dtypes of the output
    mapping: dict[str, str]  # header -> field, for the report
    csv: CsvFormat | None = None


def _plan(
    ds: Dataset,
    target: Target,
    rulebook: Rulebook,
    as_of: dt.date,
    mapping: Mapping[str, str] | None,
    encoding: str,
) -> _Plan:
    if target.form != "csv":
        _pyarrow()
    fmt: CsvFormat | None = None
    info: ParquetInfo | None = None
    if ds.kind == "csv":
        fmt = CsvFormat(encoding, _csv_sep(ds.parts[0], encoding))
        meta = csv_meta(ds, fmt)
    else:
        info = parquet_info(ds)
        meta = parquet_meta(info)
    check = classify_detailed(meta, rulebook, as_of=as_of, mapping=mapping)
    require_fields(Path(ds.name), check)
    index_names = [n for n in meta.index.names if n is not None]
    names = result_column_names([*meta.columns, *index_names])
    has_index = not isinstance(meta.index, pd.RangeIndex)
    form: Literal["csv", "parquet"] = "csv" if target.form == "csv" else "parquet"
    spec = RenderSpec(as_of, dict(mapping) if mapping else None, names, form, has_index)
    meta_out = meta.copy()
    for col in RESULT_COLUMNS:
        meta_out[names[col]] = check.results[col]
    if form == "parquet":
        spec = replace(spec, schema=_output_schema(meta_out, info, has_index, names))
    return _Plan(ds, target, spec, meta_out, check.mapping.describe(), fmt)


def _output_schema(
    meta_out: pd.DataFrame, info: ParquetInfo | None, has_index: bool, names: Mapping[str, str]
) -> pa.Schema:
    """Input columns keep their Arrow types (CSV: text); result columns get fixed types."""
    import pyarrow as pa

    inferred = pa.Schema.from_pandas(meta_out, preserve_index=has_index)
    given = {} if info is None else {f.name: f for f in info.schema}
    results = set(names.values())
    fields = []
    for f in inferred:
        if f.name in results:
            text = pd.api.types.is_string_dtype(meta_out[f.name].dtype)
            typ = pa.string() if text else f.type
            fields.append(pa.field(f.name, typ))
        elif f.name in given:
            fields.append(given[f.name])
        else:  # a CSV column: text
            fields.append(pa.field(f.name, pa.string()))
    return pa.schema(fields)


# ------------------------------------------------------------------------------ sinks
class _Sink:
    """Receives rendered pieces in row order and writes them into one output file."""

    def __init__(self, plan: _Plan, fh: Any) -> None:
        self.plan, self.fh = plan, fh
        self.writer: Any = None
        if plan.spec.form == "csv":
            fh.write(csv_header(plan.meta_out, plan.spec))
        else:
            _, pq = _pyarrow()
            schema = arrow_table(plan.meta_out, plan.spec).schema
            self.writer = pq.ParquetWriter(fh, schema)

    def write(self, piece: Rendered) -> None:
        if self.writer is None:
            self.fh.write(piece.payload)
        else:
            self.writer.write_table(piece.payload)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def stream(
    chunks: Iterable[pd.DataFrame],
    handle: Callable[[pd.DataFrame, int], Rendered],
    emit: Callable[[Rendered], None],
) -> None:
    """The chunk loop: classify and render a chunk, hand it on, drop it, read the next.

    At most one chunk (with its results and rendered output) is alive at a time: the loop
    releases its references before asking ``chunks`` for the next one.
    """
    # Not enumerate(): its reused result tuple would keep the previous chunk alive while
    # the next one is read.
    numbers = itertools.count()
    for chunk in chunks:
        piece = handle(chunk, next(numbers))
        del chunk
        emit(piece)
        del piece


def _write_file(plan: _Plan, force: bool, produce: Callable[[_Sink], None]) -> None:
    text = plan.spec.form == "csv"

    def write(fh: Any) -> None:
        sink = _Sink(plan, fh)
        try:
            produce(sink)
        finally:
            sink.close()

    atomic_write(plan.target.path, write, force=force, text=text)


def _empty_part(plan: _Plan, folder: Path) -> Rendered:
    # A folder output always holds at least one part, so that its schema can be read.
    return write_part(plan.meta_out, str(folder / part_name(0)), plan.spec)


# ------------------------------------------------------------------------------ chunked
def _run_chunked(
    plan: _Plan,
    rulebook: Rulebook,
    *,
    chunk_rows: int,
    force: bool,
    progress: Progress | None,
) -> Summary:
    summary = Summary()
    name = plan.ds.name

    def on_progress(rows: int, fraction: float | None) -> None:
        if progress is not None:
            progress(name, rows, fraction)

    if plan.csv is not None:
        chunks = iter_csv_chunks(plan.ds, plan.csv, chunk_rows, on_progress)
    else:
        chunks = iter_parquet_chunks(plan.ds, chunk_rows, on_progress)
    on_progress(0, 0.0)
    if plan.target.form == "folder":
        with _folder_in_place(plan.target.path, force=force) as folder:
            stream(
                chunks,
                lambda chunk, n: _classify_render(chunk, rulebook, plan.spec, folder, n),
                summary.add,
            )
            if not summary.pieces:
                _empty_part(plan, folder)
        return summary

    def produce(sink: _Sink) -> None:
        def emit(piece: Rendered) -> None:
            sink.write(piece)
            summary.add(piece)

        stream(chunks, lambda chunk, n: _classify_render(chunk, rulebook, plan.spec, None, n), emit)

    _write_file(plan, force, produce)
    return summary


# ------------------------------------------------------------------------------ dask
def _dask() -> tuple[Any, Any, Any]:
    """(dask, dask.dataframe, distributed), or InputError saying how to install them."""
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError as exc:
        raise InputError(f"{DASK_MISSING} ({exc})") from None
    return dask, dd, distributed


@contextmanager
def dask_client(
    scheduler: str | None = None, *, workers: int | None = None
) -> Iterator[distributed.Client]:
    """A client of the scheduler at ``scheduler``, else of a new local cluster on loopback
    (process workers, one thread each: the engine holds the GIL)."""
    _, _, distributed = _dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        with client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _broadcast(value: Any) -> Any:
    """``value`` scattered once to every worker of the current client, else itself."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return value
    return client.scatter(value, broadcast=True, hash=False)


def classify_dask(
    ddf: dd.DataFrame,
    rulebook: Rulebook | str | Path | Mapping[str, Any] | None = None,
    *,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> dd.DataFrame:
    """``classify`` on every partition of a Dask DataFrame: same index, same partitions.

    The rulebook is loaded and the as-of date resolved here, once; with a distributed
    client the rulebook is scattered to every worker once rather than shipped per task.
    """
    _dask()
    rb = load_rulebook(rulebook)
    as_of_date = _as_date(as_of)
    meta = classify(ddf._meta, rb, as_of=as_of_date, mapping=mapping)
    return ddf.map_partitions(
        classify, _broadcast(rb), as_of=as_of_date, mapping=mapping, meta=meta
    )


def _bytes_per_row(path: Path) -> float:
    with path.open("rb") as fh:
        sample = fh.read(2**20)
    return max(1.0, len(sample) / max(1, sample.count(b"\n")))


def _dask_frame(plan: _Plan, chunk_rows: int | None) -> dd.DataFrame:
    _, dd, _ = _dask()
    paths = [str(p) for p in plan.ds.parts]
    if plan.csv is not None:
        blocksize: Any = "default"
        if chunk_rows is not None:
            blocksize = max(2**16, int(chunk_rows * _bytes_per_row(plan.ds.parts[0])))
        return dd.read_csv(paths, blocksize=blocksize, **_read_csv_args(plan.csv))
    return dd.read_parquet(paths, split_row_groups=True)


def finish_partition(
    out: pd.DataFrame,
    spec: RenderSpec,
    folder: str | None,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """A classified partition rendered, or written as part file ``partition_info["number"]``
    of ``folder``; the :class:`Rendered` piece in a one-cell frame (map_partitions' form)."""
    if folder is None:
        piece = render(out, spec)
    else:
        number = partition_info["number"] if partition_info else 0
        piece = write_part(out, str(Path(folder) / part_name(number)), spec)
    return pd.DataFrame({"piece": [piece]})


_PIECE_META = pd.DataFrame({"piece": pd.Series(dtype=object)})


def _run_dask(
    plan: _Plan,
    rulebook: Rulebook,
    client: distributed.Client,
    *,
    chunk_rows: int | None,
    force: bool,
    progress: Progress | None,
) -> Summary:
    dask, _, distributed = _dask()
    rb = client.scatter(rulebook, broadcast=True, hash=False)
    summary = Summary()

    def pieces(folder: Path | None) -> list[Any]:
        # Read, classify and render (or write) fuse into one task per partition, so a
        # partition's rows never leave the worker that read them, except as rendered output.
        with dask.config.set({"dataframe.convert-string": False}):  # pandas' own dtypes
            ddf = _dask_frame(plan, chunk_rows)
            out = ddf.map_partitions(classified, rb, plan.spec, meta=plan.meta_out)
            where = None if folder is None else str(folder)
            finished = out.map_partitions(finish_partition, plan.spec, where, meta=_PIECE_META)
            return finished.to_delayed()

    def done(cell: pd.DataFrame, total: int) -> Rendered:
        piece: Rendered = cell["piece"].iloc[0]
        summary.add(piece)
        if progress is not None:
            progress(plan.ds.name, summary.rows, summary.pieces / total)
        return piece

    if progress is not None:
        progress(plan.ds.name, 0, 0.0)
    if plan.target.form == "folder":
        # Workers write the parts; only counts travel back.
        with _folder_in_place(plan.target.path, force=force) as folder:
            tasks = pieces(folder)
            for future in distributed.as_completed(client.compute(tasks)):
                done(future.result(), len(tasks))
        return summary

    # One file: partitions are classified and rendered on the workers and written here in
    # order, a bounded window of them in flight.
    tasks = pieces(None)
    window = max(2, 2 * sum(client.nthreads().values()))

    def produce(sink: _Sink) -> None:
        pending = [client.compute(t) for t in tasks[:window]]
        following = iter(tasks[window:])
        while pending:
            future = pending.pop(0)
            cell = future.result()
            future.release()
            upcoming = next(following, None)
            if upcoming is not None:
                pending.append(client.compute(upcoming))
            sink.write(done(cell, len(tasks)))
            del cell

    _write_file(plan, force, produce)
    return summary


# ------------------------------------------------------------------------------ entry
@dataclass
class _Run:
    engine: str
    rulebook: Rulebook
    as_of: dt.date
    mapping: Mapping[str, str] | None
    force: bool
    chunk_rows: int | None
    progress: Progress | None
    client: Any = None
    workers: int | None = None


def _classify_dataset(
    item: str | Path, out: str | Path | None, out_dir: str | Path | None, run: _Run
) -> FileReport:
    report = FileReport(input=str(item))
    started = time.perf_counter()
    errors: tuple[type[BaseException], ...] = (OSError, MemoryError, ValueError)
    if run.engine == "dask":
        from distributed import KilledWorker

        errors = (*errors, KilledWorker, TimeoutError)
    try:
        ds = open_dataset(item)
        target = target_for(ds, out, out_dir)
        _check_target(ds, target, run.force)
        report.output = str(target.path)
        encodings = ENCODINGS if ds.kind == "csv" else ENCODINGS[:1]
        for attempt, encoding in enumerate(encodings, 1):
            try:
                plan = _plan(ds, target, run.rulebook, run.as_of, run.mapping, encoding)
                if run.engine == "dask":
                    summary = _run_dask(
                        plan,
                        run.rulebook,
                        run.client,
                        chunk_rows=run.chunk_rows,
                        force=run.force,
                        progress=run.progress,
                    )
                else:
                    summary = _run_chunked(
                        plan,
                        run.rulebook,
                        chunk_rows=run.chunk_rows or DEFAULT_CHUNK_ROWS,
                        force=run.force,
                        progress=run.progress,
                    )
                break
            except UnicodeDecodeError as exc:
                if attempt == len(encodings):
                    raise InputError(f"{ds.name}: not UTF-8 or Windows-1252 text ({exc})") from None
        report.rows = summary.rows
        report.counts = dict(summary.counts)
        report.buyer_counts = dict(summary.buyer_counts)
        report.mapping = plan.mapping
        if run.engine == "dask":
            report.notes.append(f"dask: {summary.pieces} partitions")
        else:
            rows = run.chunk_rows or DEFAULT_CHUNK_ROWS
            report.notes.append(f"chunked: {summary.pieces} chunks of up to {rows} rows")
        if summary.warned:
            report.notes.append(
                f"{summary.warned} rows have warnings (see the "
                f"'{plan.spec.names['warnings']}' column)"
            )
        report.verdict = "ok"
    except RelationshipError as exc:
        report.verdict, report.reason, report.output = "failed", str(exc), None
    except pd.errors.ParserError as exc:
        report.verdict, report.output = "failed", None
        report.reason = f"{item}: not a readable CSV file ({exc})"
        if run.engine == "dask":
            report.reason += f"; {DASK_CSV_BLOCKS}"
    except errors as exc:
        report.verdict = "failed"
        report.reason = f"{item}: {type(exc).__name__}: {exc}"
        report.output = None
    report.timings = {"total": time.perf_counter() - started}
    return report


def run_scale(
    inputs: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    engine: Engine = "pandas",
    scheduler: str | None = None,
    rules: Rulebook | str | Path | Mapping[str, Any] | None = None,
    as_of: dt.date | str | None = None,
    mapping: Mapping[str, str] | None = None,
    force: bool = False,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> BatchReport:
    """Classify big datasets: one FileReport per input (a file, folder of parts or glob).

    ``engine="pandas"`` streams each dataset through the chunk loop; ``engine="dask"`` runs
    it on the Dask scheduler at ``scheduler`` or on a local cluster of ``workers`` processes.
    Bad options raise InputError; a dataset that fails is reported, never raised.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine {engine}: use one of {', '.join(ENGINES)}")
    if engine != "dask" and (scheduler is not None or workers is not None):
        raise InputError("--scheduler needs --engine dask")
    if chunk_rows is not None and chunk_rows < 1:
        raise InputError(f"--chunk-rows {chunk_rows}: must be 1 or more")
    if out is not None and out_dir is not None:
        raise InputError("use --out or --out-dir, not both")
    items = list(inputs)
    if not items:
        raise InputError("no input given")
    if out is not None and len(items) != 1:
        raise InputError(
            f"--out names one output but {len(items)} inputs were given; use --out-dir"
        )
    run = _Run(
        engine,
        load_rulebook(rules),
        _as_date(as_of),
        mapping,
        force,
        chunk_rows,
        progress,
        workers=workers,
    )
    report = BatchReport()
    if engine == "dask":
        with dask_client(scheduler, workers=workers) as client:
            run.client = client
            report.files = [_classify_dataset(i, out, out_dir, run) for i in items]
    else:
        report.files = [_classify_dataset(i, out, out_dir, run) for i in items]
    return report
