"""The first run: `relationship demo` on the bundled sample, as a new user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from addin.cli import app
from addin.demo import sample_workbook
from tests.conftest import AS_OF, REPO
from tests.lo_helpers import formula_cells, is_error, recalc

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    out_dir = tmp_path_factory.mktemp("demo") / "demo-output"
    result = runner.invoke(app, ["demo", "--out-dir", str(out_dir), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    return out_dir, result.output


def test_sample_is_reproducible_and_messy(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from make_sample_workbook import build

    path = tmp_path / "again.xlsx"
    build().save(path)
    ours = load_workbook(sample_workbook())
    again = load_workbook(path)
    assert [r for r in ours["Accounts"].values] == [r for r in again["Accounts"].values]
    rows = list(ours["Accounts"].values)
    assert 450 <= len(rows) - 1 <= 550
    assert "Orders/yr" in rows[0] and "# of referrals" in rows[0]
    assert ours["Regions"]._charts, "the sample carries a chart"
    assert any(str(c).startswith("=") for r in ours["Regions"].values for c in r)


def test_demo_prints_a_readable_summary(demo_run) -> None:
    _, output = demo_run
    assert "Classified 500 accounts" in output
    for heading in (
        "Relationships",
        "Ten best conversion candidates",
        "Problems found",
        "classified workbook",
        "template",
    ):
        assert heading in output
    assert "Client" in output and "Consumer" in output and "(+" in output


def test_demo_writes_every_file_and_reruns(demo_run) -> None:
    out_dir, _ = demo_run
    names = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.xlsx"))
    assert names == [
        "sample_accounts.classified.xlsx",
        "templates/account-classifier.xlsx",
        "templates/client-strategy-plan.xlsx",
        "templates/conversion-tracker.xlsx",
    ]
    book = load_workbook(out_dir / "sample_accounts.classified.xlsx")
    assert book.sheetnames == ["Accounts", "Regions", "About", "Summary", "Problems"]
    again = runner.invoke(app, ["demo", "--out-dir", str(out_dir), "--as-of", AS_OF])
    assert again.exit_code == 0, again.output


def test_demo_outputs_open_in_libreoffice_without_errors(demo_run, soffice, tmp_path) -> None:
    out_dir, _ = demo_run
    classified = out_dir / "sample_accounts.classified.xlsx"
    converted = recalc(soffice, [classified], tmp_path)
    assert converted and converted[0].is_file()
    values = load_workbook(converted[0], data_only=True)
    formulas = [(sheet, coord) for sheet, coord, _ in formula_cells(classified)]
    assert len(formulas) >= 12, "the sample's Regions formulas are in the output"
    bad = [(sheet, coord) for sheet, coord in formulas if is_error(values[sheet][coord].value)]
    assert not bad, f"error values after LibreOffice recalculated: {bad[:5]}"
    summary = [r for r in values["Summary"].values if r and r[0] == "Total"]
    assert summary and summary[0][1] == 500
