"""Templates recalculated by headless LibreOffice: proven, not assumed.

* every formula cell of every template is free of error values, except exactly the add-in
  columns (#NAME? without the add-in);
* the classifier's plain formulas give the engine's type, score and buyer type on every
  labeled row (as typed text and as typed values) and on edge-case rows;
* after edits to the Rules sheet (a setting, a weight, a threshold, a link, a keyword, a
  synonym, a removed signal) the plain formulas follow the engine run with the edited
  rulebook, loaded back from the recalculated file.

All workbooks are converted in one soffice call (a few seconds). Locally these tests skip
without LibreOffice; under CI (CI=true) they fail instead.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import AS_OF, require
from lo_helpers import formula_cells, is_error, read_table, recalc
from openpyxl import Workbook, load_workbook

from relationships import classify
from relationships.rulebook import default_rulebook, load_rulebook
from relationships.schema import map_columns
from workbook_templates import formulas as fx
from workbook_templates.api import save_workbook
from workbook_templates.builders import ADDIN_HEADERS, BUILDERS, build_classifier
from workbook_templates.specs import classifier_spec, input_header

AS_OF_DATE = dt.date.fromisoformat(AS_OF)
SPEC = classifier_spec(default_rulebook())
ACCOUNTS = SPEC.sheet("Accounts")
INPUTS = [c.header for c in ACCOUNTS.table.columns if c.field]
RESULTS = (fx.TYPE_FORMULA, fx.SCORE_FORMULA, fx.BUYER_FORMULA)

# Edge cases for the value readers; each row says what it exercises.
TRICKY: list[dict[str, Any]] = [
    {"Account": "Acme Inc", "Business type": " LAW  firm ", "Relationship months": "36"},
    {"Account": "ACME INC.", "Business type": "Lawyer", "Relationship months": " 12 "},
    {"Account": "Jane Doe", "Offering": "TAX advice", "Relationship months": "1e1"},
    {"Account": "x", "Offering": "Running shoes and consulting", "Purchases per year": "-3"},
    {"Account": "x", "Business type": "SaaS", "Offering": "Implementation"},
    {"Account": "x", "Business type": "SaaS", "Offering": "Cloud storage plan"},
    {"Account": "x", "Payment model": "Per hour", "Purchases per year": "3%"},
    {"Account": "x", "Payment model": "one-off", "Purchases per year": "$5"},
    {"Account": "x", "Payment model": "Monthly fee", "Purchases per year": "1,000"},
    {"Account": "x", "Purchases per year": "2021-01-01", "Contacts per month": "12:30"},
    {"Account": "x", "Purchases per year": "abc", "Contacts per month": "0.2"},
    {"Account": "x", "Purchases per year": True, "Contacts per month": -1},
    {"Account": "x", "Contacts per month": 0, "Decision days": 0.5, "Referrals": 3},
    {"Account": "x", "Personalization": "  TAILORED ", "Advice": True},
    {"Account": "x", "Personalization": "Tailor   made", "Advice": False},
    {"Account": "x", "Personalization": 1, "Advice": 0, "Personal use": 1},
    {"Account": "x", "Personalization": "bespoke", "Advice": "unknown", "Personal use": False},
    {"Account": "x", "Personalization": "#N/A", "Price focus": "best deal"},
    {"Account": "x", "Price focus": "ROI", "Personal use": "household"},
    {"Account": "x", "Business type": "#N/A", "Offering": "   "},
    {"Account": "x", "Business type": 123, "Offering": True},
    {"Account": "x", "Customer since": dt.date(2023, 11, 22)},  # exactly 36 months
    {"Account": "x", "Customer since": dt.date(2023, 11, 23)},  # 35 months
    {"Account": "x", "Customer since": dt.datetime(2026, 8, 31, 15, 30)},
    {"Account": "x", "Customer since": "2021-03-15"},
    {"Account": "x", "Customer since": "2021/03/15"},
    {"Account": "x", "Customer since": "2021.03.15"},
    {"Account": "x", "Customer since": "2026-09-01 10:30"},
    {"Account": "x", "Customer since": "2026-09-01T10:30:00"},
    {"Account": "x", "Customer since": 44270},
    {"Account": "x", "Customer since": "44270"},
    {"Account": "x", "Customer since": "15/03/2021"},
    {"Account": "x", "Customer since": dt.date(2027, 1, 1)},  # after the as-of date
    {"Account": "x", "Customer since": "2021-03-15", "Relationship months": 2},  # months win
    {"Account": "x", "Customer since": "2021-03-15", "Relationship months": "n/a"},
    {"Account": "Jo", "Business type": "Bakery", "Personalization": "White Glove"},
]


def _set_rules(ws, section: str, id_: str, column: str, value: Any) -> None:
    """Set one cell of the Rules row with this section and id (column letter)."""
    for row in ws.iter_rows(min_row=2):
        if row[0].value == section and row[1].value == id_:
            ws[f"{column}{row[0].row}"] = value
            return
    raise AssertionError(f"no Rules row {section}/{id_}")


def _edit_rules(wb: Workbook) -> None:
    """What an analyst might change on the Rules sheet, in place."""
    ws = wb["Rules"]
    _set_rules(ws, "setting", "threshold", "E", 45)
    _set_rules(ws, "setting", "base", "E", 35)
    _set_rules(ws, "signal", "advice_yes", "F", 30)
    _set_rules(ws, "signal", "tenure_long", "E", 6)
    _set_rules(ws, "signal", "offering_goods", "H", None)  # no longer suppressed
    for row in ws.iter_rows(min_row=2):  # delete a signal (it has no keywords)
        if row[0].value == "signal" and row[1].value == "decision_quick":
            for cell in row:
                cell.value = None
    ws.append(["keyword", "business_client_based", "business_type", None, "bakery"])
    ws.append(["synonym", "tailored", "personalization", None, "white glove"])


@pytest.fixture(scope="module")
def converted(soffice: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every workbook these tests need, built, saved and recalculated in one soffice call."""
    src = tmp_path_factory.mktemp("src")
    labeled = pd.read_csv(
        Path(__file__).parent / "data" / "labeled_rows.csv", dtype=str, keep_default_na=False
    )
    typed = pd.read_csv(Path(__file__).parent / "data" / "labeled_rows.csv")
    books: dict[str, Workbook] = {key: build(as_of=AS_OF_DATE) for key, build in BUILDERS.items()}
    books["labeled-text"] = build_classifier(rows=labeled, as_of=AS_OF_DATE)
    books["labeled-typed"] = build_classifier(rows=typed, as_of=AS_OF_DATE)
    books["tricky"] = build_classifier(rows=TRICKY, as_of=AS_OF_DATE)
    rb = default_rulebook()
    as_template = {
        c: input_header(rb, f) for f, c in map_columns(labeled.columns, rb).fields.items()
    }
    both = pd.concat([labeled.rename(columns=as_template), pd.DataFrame(TRICKY)])
    edited = build_classifier(rows=both, as_of=AS_OF_DATE)
    _edit_rules(edited)
    books["edited-rules"] = edited
    added = build_classifier(rows=TRICKY[:1], as_of=AS_OF_DATE)
    added["Rules"].append(["signal", "brand_new", "referrals", "at_least", 10, 5, "new", "", "s"])
    books["added-signal"] = added
    paths = [save_workbook(wb, src / f"{name}.xlsx") for name, wb in books.items()]
    out = recalc(soffice, paths, tmp_path_factory.mktemp("recalculated"))
    return {p.stem: p for p in out} | {f"{p.stem}.src": p for p in paths}


def _header_of(path: Path) -> dict[tuple[str, str], str]:
    """(sheet, column letter) -> table header, for the sheets with a table."""
    wb = load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for table in ws.tables.values():
            first_cell = table.ref.split(":")[0]
            row = int("".join(ch for ch in first_cell if ch.isdigit()))
            for cell in ws[row]:
                if cell.value is not None:
                    out[(ws.title, cell.column_letter)] = str(cell.value)
    return out


@pytest.mark.parametrize("key", list(BUILDERS))
def test_no_error_value_in_any_formula_cell_but_the_addin_columns(
    converted: dict[str, Path], key: str
) -> None:
    src, done = converted[f"{key}.src"], converted[key]
    headers = _header_of(src)
    values = load_workbook(done, data_only=True)
    errors, addin = [], []
    checked = 0
    for sheet, coord, _ in formula_cells(src):
        value = values[sheet][coord].value
        header = headers.get((sheet, "".join(ch for ch in coord if ch.isalpha())))
        if header in ADDIN_HEADERS:
            addin.append(value)
            continue
        checked += 1
        if is_error(value):
            errors.append(f"{sheet}!{coord} ({header}): {value}")
    assert errors == []
    assert checked > 50
    if key == "account-classifier":
        # the excluded cells are exactly the add-in's: #NAME? without it, or blank rows
        assert addin and all(v == "#NAME?" or v in (None, "") for v in addin)
        assert sum(v == "#NAME?" for v in addin) == 3 * 4  # 4 sample rows x 3 columns
    else:
        assert addin == []


def test_templates_recalculate_to_sensible_values(converted: dict[str, Path]) -> None:
    plan = load_workbook(converted["client-strategy-plan"], data_only=True)
    dash = plan["Dashboard"]
    assert dash["B4"].value == dt.datetime(2026, 11, 22)
    values = {dash.cell(r, 1).value: dash.cell(r, 2).value for r in range(4, 16)}
    assert values["Latest period"] == "2025-12"
    assert values["Clients"] > 40 and 0 < values["Client retention"] <= 1
    assert values["Touchpoints overdue"] == 3  # sample contacts are long past
    cadence = read_table(converted["client-strategy-plan"], "Cadence", 4, 3)
    assert [r["Status"] for r in cadence] == ["Overdue"] * 3
    assert cadence[0]["Next date"] == dt.datetime(2025, 4, 16)
    tracker = load_workbook(converted["conversion-tracker"], data_only=True)
    summary = {
        tracker["Summary"].cell(r, 1).value: tracker["Summary"].cell(r, 2).value
        for r in range(4, 11)
    }
    assert summary["Accounts tracked"] == 3 and summary["Follow-ups overdue"] == 2
    funnel = read_table(converted["conversion-tracker"], "Summary", 12, 6)
    assert [r["Accounts"] for r in funnel] == [1, 1, 0, 1, 0, 0]
    assert [r["At or beyond"] for r in funnel][:5] == [3, 2, 1, 1, 0]


def _compare(converted: dict[str, Path], name: str, rulebook: Any = None) -> pd.DataFrame:
    """Plain-formula results next to the engine's on the same cells; returns the frame."""
    n = load_workbook(converted[f"{name}.src"])["Accounts"].tables["Accounts"].ref
    rows = int(n.split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) - ACCOUNTS.header_row
    given = pd.DataFrame(
        read_table(converted[f"{name}.src"], "Accounts", ACCOUNTS.header_row, rows)
    )
    done = pd.DataFrame(read_table(converted[name], "Accounts", ACCOUNTS.header_row, rows))
    engine = classify(given[INPUTS], rulebook, as_of=AS_OF)
    frame = pd.DataFrame(
        {
            "account": given["Account"],
            "type_formula": done[fx.TYPE_FORMULA],
            "type_engine": engine["relationship_type"],
            "score_formula": done[fx.SCORE_FORMULA].astype(float),
            "score_engine": engine["client_score"].astype(float),
            "buyer_formula": done[fx.BUYER_FORMULA],
            "buyer_engine": engine["buyer_type"],
        }
    )
    bad = frame[
        (frame.type_formula != frame.type_engine)
        | (frame.score_formula != frame.score_engine)
        | (frame.buyer_formula != frame.buyer_engine)
    ]
    assert bad.empty, "plain formulas differ from the engine:\n" + bad.to_string()
    return frame


@pytest.mark.parametrize("name", ["labeled-text", "labeled-typed"])
def test_plain_formulas_equal_the_engine_on_every_labeled_row(
    converted: dict[str, Path], name: str, labeled: pd.DataFrame
) -> None:
    frame = _compare(converted, name)
    assert len(frame) == len(labeled)
    assert set(frame.type_formula) == {"Client", "Customer"}
    assert frame.score_formula.nunique() > 5


def test_plain_formulas_equal_the_engine_on_edge_cases(converted: dict[str, Path]) -> None:
    frame = _compare(converted, "tricky")
    assert len(frame) == len(TRICKY)


def test_plain_formulas_follow_an_edited_rules_sheet(converted: dict[str, Path]) -> None:
    edited = load_rulebook(converted["edited-rules"])
    assert edited.settings.threshold == 45 and edited.settings.base == 35
    assert edited.signal("advice_yes").weight == 30
    assert "decision_quick" not in {s.id for s in edited.signals}
    assert "bakery" in edited.signal("business_client_based").keywords
    frame = _compare(converted, "edited-rules", edited)
    # the edits changed results: the default rulebook would disagree on some rows
    given = pd.DataFrame(
        read_table(converted["edited-rules.src"], "Accounts", ACCOUNTS.header_row, len(frame))
    )
    default = classify(given[INPUTS], as_of=AS_OF)
    assert (default["client_score"].astype(float) != frame.score_formula).sum() > 10
    assert (default["relationship_type"] != frame.type_formula).any()
    check = load_workbook(converted["edited-rules"], data_only=True)["Accounts"]["B5"].value
    assert check == "In step with the Rules sheet"


def test_the_rules_check_asks_for_a_rebuild_when_a_signal_is_added(
    converted: dict[str, Path],
) -> None:
    check = load_workbook(converted["added-signal"], data_only=True)["Accounts"]["B5"].value
    assert check.startswith("Rebuild the template")


def test_render_previews_command(soffice: str, tmp_path: Path) -> None:
    """The documented command writes one PNG per template (first page of its main sheet)."""
    tools = shutil.which("pdftoppm") and shutil.which("pdftotext")
    require(bool(tools), "poppler-utils (pdftoppm, pdftotext) is not installed")
    script = Path(__file__).resolve().parents[1] / "scripts" / "render_previews.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out-dir", str(tmp_path), "--dpi", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for key in BUILDERS:
        png = tmp_path / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
