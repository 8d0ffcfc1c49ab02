"""Big inputs without Dask: the chunk loop over CSV and Parquet, its outputs and its options."""

from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relationships import classify, default_rulebook
from relationships.batch import classify_file
from relationships.errors import InputError
from relationships.scale import (
    CsvFormat,
    Rendered,
    iter_csv_chunks,
    iter_parquet_chunks,
    open_dataset,
    run_scale,
    stream,
    wants_scale_path,
)

AS_OF = dt.date(2026, 1, 31)


def accounts(n: int, seed: int = 0) -> pd.DataFrame:
    """Account rows as an analyst's export holds them: text, some bad, some formula-like."""
    rng = np.random.default_rng(seed)

    def pick(*options: str) -> np.ndarray:
        return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]

    return pd.DataFrame(
        {
            "Account": [f"ACC-{i:05d}" for i in range(n)],
            "Industry": pick("Law firm", "SaaS", "Retail store", "Accounting", "=1+1", ""),
            "Service type": pick("Tax advice", "Subscription", "Coffee", "Audit", "-5 units"),
            "Billing": pick("Retainer", "Per item", "Monthly subscription", "Hourly", ""),
            "Tenure (months)": pick("3", "12", "48", "n/a", "", "1,200"),
            "Customer since": pick("2020-01-15", "2025-11-01", "", "yesterday"),
            "Personalization": pick("tailored", "standard", "partial", "", "bespoke-ish"),
            "Needs advice": pick("yes", "no", ""),
            "Notes": pick("VIP", "@mention", "\x07bell", "", "line one\nline two", "a;b"),
            "relationship_type": pick("old label", ""),  # clashes with a result column
        }
    )


def write_csv(frame: pd.DataFrame, path: Path, *, sep: str = ",", encoding: str = "utf-8") -> Path:
    frame.to_csv(path, index=False, sep=sep, encoding=encoding)
    return path


def read_back(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


# ------------------------------------------------------------------------------ CSV parity
@pytest.mark.parametrize("chunk_rows", [1, 7, None])
@pytest.mark.parametrize(
    ("sep", "encoding"), [(",", "utf-8"), (",", "utf-8-sig"), (";", "utf-8"), (",", "cp1252")]
)
def test_chunked_csv_is_byte_identical_to_batch(tmp_path, chunk_rows, sep, encoding):
    frame = accounts(40)
    if encoding == "cp1252":
        frame.loc[3, "Account"] = "Café Müller"  # not UTF-8 once written as cp1252
    src = write_csv(frame, tmp_path / "in.csv", sep=sep, encoding=encoding)
    whole = classify_file(src, out=tmp_path / "whole.csv", as_of=AS_OF)
    assert whole.ok, whole.reason
    report = run_scale([src], tmp_path / "chunked.csv", as_of=AS_OF, chunk_rows=chunk_rows)
    (chunked,) = report.files
    assert chunked.ok, chunked.reason
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert chunked.rows == whole.rows == 40
    assert chunked.counts == whole.counts
    assert chunked.buyer_counts == whole.buyer_counts
    assert chunked.mapping == whole.mapping
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 30), chunk_rows=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_chunk_size_never_changes_the_output(n, chunk_rows, seed):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = write_csv(accounts(n, seed), tmp_path / "in.csv")
        assert classify_file(src, out=tmp_path / "whole.csv", as_of=AS_OF).ok
        report = run_scale([src], tmp_path / "chunked.csv", as_of=AS_OF, chunk_rows=chunk_rows)
        assert report.ok, report.files[0].reason
        assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_header_only_csv_gives_header_only_output(tmp_path):
    src = write_csv(accounts(0), tmp_path / "empty.csv")
    assert classify_file(src, out=tmp_path / "whole.csv", as_of=AS_OF).ok
    report = run_scale([src], tmp_path / "chunked.csv", as_of=AS_OF, chunk_rows=10)
    assert report.ok and report.files[0].rows == 0
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert run_scale([src], tmp_path / "empty_parts", as_of=AS_OF).ok
    parts = pd.read_parquet(tmp_path / "empty_parts")
    assert len(parts) == 0 and "relationship_type_2" in parts.columns


# ------------------------------------------------------------------------------ Parquet
def expected(frame: pd.DataFrame) -> pd.DataFrame:
    """What the all-in-memory path gives: the input, then the results, same index."""
    results = classify(frame, default_rulebook(), as_of=AS_OF)
    out = frame.copy()
    for col in results.columns:
        out[col if col not in frame.columns else f"{col}_2"] = results[col]
    return out


@pytest.mark.parametrize("stored_index", [False, True])
@pytest.mark.parametrize("out_name", ["out.parquet", "out_parts"])
def test_chunked_parquet_matches_the_whole_frame(tmp_path, stored_index, out_name):
    frame = accounts(500)
    frame["Orders/year"] = np.arange(500) % 30  # a typed (int64) column survives
    if stored_index:
        frame.index = pd.Index([f"key-{i}" for i in range(500)][::-1], name="key")
    frame.to_parquet(tmp_path / "in.parquet", row_group_size=120)
    report = run_scale([tmp_path / "in.parquet"], tmp_path / out_name, as_of=AS_OF, chunk_rows=50)
    assert report.ok, report.files[0].reason
    got = pd.read_parquet(tmp_path / out_name)
    # What the all-in-memory path gives once pandas writes it as Parquet and reads it back.
    expected(pd.read_parquet(tmp_path / "in.parquet")).to_parquet(tmp_path / "whole.parquet")
    pd.testing.assert_frame_equal(got, pd.read_parquet(tmp_path / "whole.parquet"))
    if out_name == "out_parts":
        names = sorted(p.name for p in (tmp_path / out_name).iterdir())
        assert names[:2] == ["part.00000.parquet", "part.00001.parquet"] and len(names) == 10


def test_parquet_to_csv_equals_the_batch_csv_of_the_same_rows(tmp_path):
    frame = accounts(80)
    frame.to_parquet(tmp_path / "in.parquet")
    write_csv(frame, tmp_path / "in.csv")
    assert classify_file(tmp_path / "in.csv", out=tmp_path / "whole.csv", as_of=AS_OF).ok
    report = run_scale([tmp_path / "in.parquet"], tmp_path / "out.csv", as_of=AS_OF, chunk_rows=9)
    assert report.ok, report.files[0].reason
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


# ------------------------------------------------------------------------------ datasets
def test_a_folder_of_parts_is_one_dataset_in_natural_order(tmp_path):
    frame = accounts(90)
    folder = tmp_path / "export"
    folder.mkdir()
    for number, rows in [(1, slice(0, 30)), (2, slice(30, 60)), (10, slice(60, 90))]:
        write_csv(frame.iloc[rows], folder / f"part.{number}.csv")
    ds = open_dataset(folder)
    assert [p.name for p in ds.parts] == ["part.1.csv", "part.2.csv", "part.10.csv"]
    report = run_scale([folder], out_dir=tmp_path / "results", as_of=AS_OF, chunk_rows=16)
    (file_report,) = report.files
    assert file_report.ok, file_report.reason
    assert file_report.output == str(tmp_path / "results" / "export.classified.csv")
    got = read_back(Path(file_report.output))
    assert got["Account"].tolist() == frame["Account"].tolist()
    assert file_report.rows == 90


def test_parts_with_different_headers_are_refused(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    write_csv(accounts(5), folder / "a.csv")
    write_csv(accounts(5).rename(columns={"Billing": "Payment"}), folder / "b.csv")
    report = run_scale([folder], tmp_path / "out.csv", as_of=AS_OF)
    assert not report.ok
    assert "b.csv: its columns differ from those of a.csv" in report.files[0].reason


def test_a_folder_of_csv_and_parquet_is_refused(tmp_path):
    write_csv(accounts(5), tmp_path / "a.csv")
    accounts(5).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError, match="holds both CSV and Parquet files"):
        open_dataset(tmp_path)


def test_no_recognized_column_fails_with_the_batch_message(tmp_path):
    src = write_csv(pd.DataFrame({"foo": ["1"], "bar": ["2"]}), tmp_path / "in.csv")
    report = run_scale([src], tmp_path / "out.csv")
    assert report.files[0].verdict == "failed"
    assert report.files[0].reason.endswith(
        "in.csv: no column recognized as a relationship field: use headers such as Industry, "
        "Service type, Billing, Tenure (months), or map a header to a field: "
        "--map 'Header=field'"
    )
    assert not (tmp_path / "out.csv").exists()


# ------------------------------------------------------------------------------ outputs
def test_existing_output_needs_force(tmp_path):
    src = write_csv(accounts(10), tmp_path / "in.csv")
    (tmp_path / "out.csv").write_text("keep me")
    report = run_scale([src], tmp_path / "out.csv", as_of=AS_OF)
    assert "exists already (use --force to replace it)" in report.files[0].reason
    assert (tmp_path / "out.csv").read_text() == "keep me"
    assert run_scale([src], tmp_path / "out.csv", as_of=AS_OF, force=True).ok
    assert len(read_back(tmp_path / "out.csv")) == 10


def test_force_never_replaces_a_folder_of_other_files(tmp_path):
    src = write_csv(accounts(10), tmp_path / "in.csv")
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.docx").write_text("precious")
    report = run_scale([src], folder, as_of=AS_OF, force=True)
    assert "holds files that are not result parts (thesis.docx)" in report.files[0].reason
    assert (folder / "thesis.docx").read_text() == "precious"


def test_force_replaces_an_earlier_result_folder(tmp_path):
    src = write_csv(accounts(30), tmp_path / "in.csv")
    assert run_scale([src], tmp_path / "parts", as_of=AS_OF, chunk_rows=10).ok
    assert len(list((tmp_path / "parts").iterdir())) == 3
    assert run_scale([src], tmp_path / "parts", as_of=AS_OF, chunk_rows=20, force=True).ok
    assert len(list((tmp_path / "parts").iterdir())) == 2
    assert len(pd.read_parquet(tmp_path / "parts")) == 30
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "parts").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700


def test_the_output_may_not_land_in_the_input_folder(tmp_path):
    write_csv(accounts(5), tmp_path / "a.csv")
    report = run_scale([tmp_path], tmp_path / "out.csv")
    assert "inside the input folder" in report.files[0].reason


def test_a_failed_run_leaves_no_output_and_no_temporary_file(tmp_path, monkeypatch):
    src = write_csv(accounts(40), tmp_path / "in.csv")

    def boom(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr("relationships.scale.classify", boom)
    for out in ("out.csv", "out.parquet", "parts"):
        report = run_scale([src], tmp_path / out, as_of=AS_OF, chunk_rows=10)
        assert report.files[0].verdict == "failed"
        assert "MemoryError: simulated" in report.files[0].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# ------------------------------------------------------------------------------ memory bound
def test_the_chunk_loop_holds_one_chunk_at_a_time():
    refs: list[weakref.ref] = []
    handled: list[int] = []

    def source() -> Iterator[pd.DataFrame]:
        for number in range(12):
            gc.collect()
            alive = [i for i, r in enumerate(refs) if r() is not None]
            assert alive == [], f"chunks {alive} are still held when chunk {number} is read"
            chunk = accounts(25, seed=number)
            refs.append(weakref.ref(chunk))
            yield chunk
            del chunk

    def handle(chunk: pd.DataFrame, number: int) -> Rendered:
        handled.append(number)
        out = classify(chunk, as_of=AS_OF)
        return Rendered(out, len(out), {}, {}, 0)

    stream(source(), handle, lambda piece: None)
    assert handled == list(range(12))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_readers_release_each_chunk_before_reading_the_next(tmp_path, kind):
    frame = accounts(400)
    if kind == "csv":
        src = write_csv(frame, tmp_path / "in.csv")
        chunks = iter_csv_chunks(open_dataset(src), CsvFormat("utf-8-sig", ","), 30)
    else:
        frame.to_parquet(tmp_path / "in.parquet", row_group_size=100)
        chunks = iter_parquet_chunks(open_dataset(tmp_path / "in.parquet"), 30)
    refs: list[weakref.ref] = []
    starts = []
    for chunk in chunks:
        gc.collect()
        assert all(r() is None for r in refs), "an earlier chunk is still held by the reader"
        assert len(chunk) <= 30
        starts.append(chunk.index[0])
        refs.append(weakref.ref(chunk))
        del chunk
    assert len(refs) >= 400 // 30
    assert starts[:3] == [0, 30, 60]  # a running RangeIndex, as one read_csv would give


def test_progress_reports_rows_and_fraction(tmp_path):
    src = write_csv(accounts(100), tmp_path / "in.csv")
    seen: list[tuple[str, int, float | None]] = []
    report = run_scale(
        [src], tmp_path / "out.csv", as_of=AS_OF, chunk_rows=25, progress=lambda *a: seen.append(a)
    )
    assert report.ok
    assert seen[0] == (str(src), 0, 0.0)
    assert [rows for _, rows, _ in seen[1:]] == [25, 50, 75, 100]
    fractions = [f for _, _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


# ------------------------------------------------------------------------------ options
def test_dispatch_rule(tmp_path):
    small = write_csv(accounts(5), tmp_path / "small.csv")
    big = write_csv(accounts(200), tmp_path / "big.csv")
    accounts(5).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "csvs").mkdir()
    write_csv(accounts(5), tmp_path / "csvs" / "a.csv")
    (tmp_path / "pq").mkdir()
    accounts(5).to_parquet(tmp_path / "pq" / "part.0.parquet")
    limit = small.stat().st_size + 1
    assert not wants_scale_path([small], threshold=limit)
    assert not wants_scale_path([tmp_path / "csvs"], threshold=limit)
    assert not wants_scale_path(["book.xlsx"], threshold=limit)
    assert wants_scale_path([small, big], threshold=limit)
    assert wants_scale_path([tmp_path / "in.parquet"])
    assert wants_scale_path([tmp_path / "pq"])
    assert wants_scale_path([str(tmp_path / "pq" / "*.parquet")])
    assert wants_scale_path([small], engine="dask")
    assert wants_scale_path([small], chunk_rows=1000)
    assert wants_scale_path([small], scheduler="tcp://127.0.0.1:8786")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "spark"}, "--engine spark: use one of pandas, dask"),
        ({"scheduler": "tcp://127.0.0.1:8786"}, "--scheduler needs --engine dask"),
        ({"chunk_rows": 0}, "--chunk-rows 0: must be 1 or more"),
        ({"out": "x.csv", "out_dir": "d"}, "use --out or --out-dir, not both"),
        ({"as_of": "soon"}, "as-of date 'soon' is not a date"),
    ],
)
def test_bad_options_are_refused(tmp_path, options, message):
    src = write_csv(accounts(3), tmp_path / "in.csv")
    with pytest.raises(InputError, match=message):
        run_scale([src], **options)


def test_out_names_one_output(tmp_path):
    a = write_csv(accounts(3), tmp_path / "a.csv")
    with pytest.raises(InputError, match="--out names one output but 2 inputs were given"):
        run_scale([a, a], tmp_path / "out.csv")


def test_without_dask_the_dask_engine_says_how_to_install_it(tmp_path, monkeypatch):
    for name in ("dask", "dask.dataframe", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    src = write_csv(accounts(3), tmp_path / "in.csv")
    with pytest.raises(InputError, match=r"pip install 'relationship-addin\[dask\]'"):
        run_scale([src], engine="dask")
    # The chunked path needs none of it.
    assert run_scale([src], tmp_path / "out.csv", as_of=AS_OF).ok


def test_without_pyarrow_parquet_says_how_to_install_it(tmp_path, monkeypatch):
    src = write_csv(accounts(3), tmp_path / "in.csv")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    report = run_scale([src], tmp_path / "out.parquet", as_of=AS_OF)
    assert "reading or writing Parquet needs pyarrow: pip install pyarrow" in report.files[0].reason


# ------------------------------------------------------------------------------ CLI
def _cli_wired() -> bool:
    from addin.cli import app

    command = next(c for c in app.registered_commands if c.name in (None, "classify"))
    return "chunk_rows" in command.callback.__code__.co_varnames


cli = pytest.mark.skipif(not _cli_wired(), reason="addin/cli.py has no --engine yet")


def run_cli(*args: str):
    from typer.testing import CliRunner

    from addin.cli import app

    return CliRunner().invoke(app, ["classify", *args])


@cli
def test_cli_streams_a_csv_in_chunks_like_the_batch_path(tmp_path):
    src = write_csv(accounts(60), tmp_path / "in.csv")
    assert run_cli(str(src), "--out", str(tmp_path / "whole.csv"), "--as-of", "2026-01-31")
    result = run_cli(
        str(src),
        "--chunk-rows",
        "7",
        "--out",
        str(tmp_path / "chunked.csv"),
        "--as-of",
        "2026-01-31",
    )
    assert result.exit_code == 0, result.output
    assert "chunked: 9 chunks of up to 7 rows" in result.output
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


@cli
def test_cli_takes_parquet_without_options(tmp_path):
    accounts(30).to_parquet(tmp_path / "in.parquet")
    result = run_cli(str(tmp_path / "in.parquet"), "--as-of", "2026-01-31")
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "in.classified.parquet")) == 30


@cli
def test_cli_dask_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    for name in ("dask", "dask.dataframe", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    src = write_csv(accounts(3), tmp_path / "in.csv")
    result = run_cli(str(src), "--engine", "dask")
    assert result.exit_code == 2
    assert "Error: --engine dask needs the optional Dask extra: pip install" in result.output


@cli
def test_cli_refuses_workbook_options_on_the_scale_path(tmp_path):
    src = write_csv(accounts(3), tmp_path / "in.csv")
    result = run_cli(str(src), "--chunk-rows", "5", "--sheet", "Accounts")
    assert result.exit_code == 2
    assert "--sheet, --header-row and --results-only are for workbooks" in result.output
