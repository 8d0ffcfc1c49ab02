"""Classifying workbooks: table choice, result columns, Summary and Problems, the report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.table import Table
from typer.testing import CliRunner

from addin.cli import app
from relationships.batch import classify_file, classify_files
from tests.conftest import AS_OF

runner = CliRunner()
HEADERS = ["Account", "Industry", "Service type", "Billing", "Tenure (months)", "Owner"]
ROWS = [
    ["Hartley & Moss LLP", "Law firm", "Commercial litigation", "Monthly retainer", 48, "Ann"],
    ["Mara Lind", "Retail store", "Running shoes", "One-time purchase", "soon", "Bo"],
    [
        "Riverbend Clinic",
        "SaaS",
        "Software subscription plus implementation consulting",
        "Annual subscription",
        16,
        "Cy",
    ],
]


def make_book(path: Path, *, table: bool = True, extra_sheet: bool = True) -> Path:
    wb = Workbook()
    if extra_sheet:
        notes = wb.active
        notes.title = "Notes"
        notes["A1"] = "Quarterly notes"
        ws = wb.create_sheet("Accounts")
    else:
        ws = wb.active
        ws.title = "Accounts"
    ws.append(HEADERS)
    for r in ROWS:
        ws.append(r)
    if table:
        ws.add_table(Table(displayName="Book", ref=f"A1:F{len(ROWS) + 1}"))
    wb.save(path)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_workbook_gets_results_summary_and_problems(tmp_path: Path) -> None:
    src = make_book(tmp_path / "book.xlsx")
    before = sha(src)
    report = classify_file(src, as_of=AS_OF)
    assert report.ok, report.reason
    assert sha(src) == before
    assert (report.sheet, report.table, report.header_row, report.rows) == (
        "Accounts",
        "Book",
        1,
        3,
    )
    assert report.counts == {"Client": 2, "Customer": 1}
    assert report.mapping["Industry"] == "business_type"
    assert any("Excel Table 'Book'" in note for note in report.notes)
    out = load_workbook(report.output)
    assert out.sheetnames == ["Notes", "Accounts", "Summary", "Problems"]
    ws = out["Accounts"]
    assert [c.value for c in ws[1]][6:9] == ["relationship_type", "client_score", "confidence"]
    assert [ws.cell(row=r, column=7).value for r in (2, 3, 4)] == ["Client", "Customer", "Client"]
    assert ws.tables["Book"].ref == "A1:M4"
    problems = [list(r) for r in out["Problems"].iter_rows(min_row=2, values_only=True)]
    assert problems == [["Accounts", "E3", "relationship_months", "soon", "is not a number"]]
    summary = {r[0]: r[1] for r in out["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert (summary["Client"], summary["Customer"], summary["Total"]) == (2, 1, 3)
    assert report.problems[0]["cell"] == "E3"


def test_sheet_choice_map_and_errors(tmp_path: Path) -> None:
    src = make_book(tmp_path / "plain.xlsx", table=False)
    report = classify_file(src, sheet="accounts", as_of=AS_OF)
    assert report.ok and report.table is None
    wrong = classify_file(src, sheet="Nope", out=tmp_path / "x.xlsx")
    assert wrong.verdict == "failed"
    assert "no sheet or Excel Table named 'Nope'" in wrong.reason
    assert "(sheets and tables: 'Notes', 'Accounts')" in wrong.reason
    blank = Workbook()
    blank.active.append(["Colour", "Size"])
    blank.active.append(["red", "big"])
    blank.save(tmp_path / "blank.xlsx")
    failed = classify_file(tmp_path / "blank.xlsx")
    assert failed.verdict == "failed"
    assert failed.reason.endswith(
        "blank.xlsx, any sheet: no column recognized as a relationship field: use headers "
        "such as Industry, Service type, Billing, Tenure (months), or pick the table with "
        "--sheet, --header-row or map a header to a field: --map 'Header=field'"
    )
    mapped = classify_file(
        tmp_path / "blank.xlsx", mapping={"Colour": "business_type"}, out=tmp_path / "mapped.xlsx"
    )
    assert mapped.ok and mapped.mapping == {"Colour": "business_type"}


def test_results_only_writes_a_separate_workbook(tmp_path: Path) -> None:
    src = make_book(tmp_path / "book.xlsx")
    report = classify_file(src, results_only=True, out=tmp_path / "results.xlsx", as_of=AS_OF)
    assert report.ok, report.reason
    out = load_workbook(report.output)
    assert out.sheetnames[0] == "Results" and {"Summary", "Problems"} <= set(out.sheetnames)
    header = [c.value for c in out["Results"][1]]
    assert header[:3] == ["Row", "Account", "relationship_type"]


def test_cli_batch_over_a_folder_with_a_bad_file_and_report(tmp_path: Path) -> None:
    make_book(tmp_path / "good.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "notes.xlsx").write_text("hello", encoding="utf-8")
    out_dir = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "classify",
            str(tmp_path),
            "--out-dir",
            str(out_dir),
            "--report",
            str(tmp_path / "r.json"),
            "--as-of",
            AS_OF,
        ],
    )
    assert result.exit_code == 1
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    verdicts = {Path(f["input"]).name: (f["verdict"], f["reason"]) for f in data["files"]}
    assert verdicts["good.xlsx"][0] == "ok"
    assert verdicts["broken.xlsx"][0] == "refused"
    assert verdicts["notes.xlsx"][0] == "refused"
    assert "not an Excel workbook" in verdicts["notes.xlsx"][1]
    assert (out_dir / "good.classified.xlsx").is_file()
    assert sorted(p.name for p in out_dir.iterdir()) == ["good.classified.xlsx"]


def test_glob_input_and_out_needs_one_input(tmp_path: Path) -> None:
    make_book(tmp_path / "a.xlsx")
    make_book(tmp_path / "b.xlsx")
    report = classify_files([str(tmp_path / "*.xlsx")], out_dir=tmp_path / "o", as_of=AS_OF)
    assert report.ok and len(report.files) == 2
    from relationships.errors import InputError

    with pytest.raises(InputError, match="--out names one file but 2 inputs"):
        classify_files([str(tmp_path / "*.xlsx")], out=tmp_path / "x.xlsx")
