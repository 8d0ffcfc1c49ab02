"""Planning templates: specs, builders, safe writing, the CLI command, portability.

LibreOffice recalculation (no error values, formulas equal to the engine) is in
test_templates_libreoffice.py.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from relationships import classify
from relationships.errors import InputError, OutputExistsError
from relationships.rulebook import (
    default_rulebook,
    fold_value,
    rulebook_from_dict,
    rulebook_to_dict,
)
from relationships.schema import map_columns
from workbook_templates import api
from workbook_templates import formulas as fx
from workbook_templates.api import TEMPLATE_FILES, build_all, save_workbook
from workbook_templates.builders import (
    ADDIN_HEADERS,
    BUILDERS,
    FORMULA_STYLE,
    INPUT_STYLE,
    build_classifier,
    template_specs,
)
from workbook_templates.specs import SAMPLE_PREFIX, input_header
from workbook_templates.templates_cli import register

SPECS = template_specs()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three templates, built once with the default rulebook and saved."""
    out = tmp_path_factory.mktemp("templates")
    return {p.stem: p for p in build_all(out)}


def _table_sheets(key: str):
    return [s for s in SPECS[key].sheets if s.table is not None]


def _all_formulas(path: Path) -> list[tuple[str, str, str]]:
    """(sheet, where, formula) for cells, validations, conditional formats and names."""
    wb = load_workbook(path)
    found = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    found.append((ws.title, c.coordinate, c.value))
        for dv in ws.data_validations.dataValidation:
            for f in (dv.formula1, dv.formula2):
                if f:
                    found.append((ws.title, f"validation {dv.sqref}", f))
        for rng, rules in ws.conditional_formatting._cf_rules.items():
            for rule in rules:
                for f in rule.formula or ():
                    found.append((ws.title, f"format {rng.sqref}", f))
    for name, dn in wb.defined_names.items():
        found.append(("(names)", name, dn.attr_text))
    return found


# ------------------------------------------------------------------------------ api + CLI
@pytest.fixture
def quick_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny stand-in workbooks: the safe-write tests need files, not real templates."""

    def tiny(rb: object) -> Workbook:
        wb = Workbook()
        wb.active["A1"] = getattr(rb, "name", "?")
        return wb

    monkeypatch.setattr(api, "BUILDERS", {key: tiny for key in BUILDERS})


def test_build_all_writes_the_three_templates(built: dict[str, Path]) -> None:
    assert sorted(p.name for p in built.values()) == sorted(TEMPLATE_FILES)
    assert all(p.stat().st_size > 20_000 for p in built.values())
    assert sorted(p.name for p in next(iter(built.values())).parent.iterdir()) == sorted(
        TEMPLATE_FILES
    )


@pytest.mark.usefixtures("quick_builders")
def test_build_all_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    paths = build_all(tmp_path)
    assert [p.name for p in paths] == list(TEMPLATE_FILES)
    before = {p: p.stat().st_mtime_ns for p in paths}
    with pytest.raises(OutputExistsError, match="exist.*use --force"):
        build_all(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in paths} == before  # nothing touched
    assert build_all(tmp_path, force=True) == paths
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TEMPLATE_FILES)  # no temp files


@pytest.mark.usefixtures("quick_builders")
def test_build_all_refuses_when_any_one_exists(tmp_path: Path) -> None:
    (tmp_path / "conversion-tracker.xlsx").write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="conversion-tracker.xlsx"):
        build_all(tmp_path)
    assert (tmp_path / "conversion-tracker.xlsx").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversion-tracker.xlsx"]


def test_save_workbook_leaves_no_temp_file_on_failure(tmp_path: Path) -> None:
    class Broken:
        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_workbook(Broken(), tmp_path / "x.xlsx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_build_all_uses_the_given_rulebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "BUILDERS", {"account-classifier": build_classifier})
    data = rulebook_to_dict(default_rulebook())
    for v in data["vocabulary"]:
        if v["field"] == "price_focus" and v["value"] == "value":
            v["value"] = "quality"
            v["synonyms"] = [s for s in v["synonyms"] if s != "value"] + ["value", "quality"]
    for s in data["signal"]:
        if s["id"] == "price_focus_value":
            s["value"] = "quality"
    rb = rulebook_from_dict(data, "test")
    path = build_all(tmp_path, rb)[0]
    ws = load_workbook(path)["Accounts"]
    lists = [dv.formula1 for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert '"Price,Quality"' in lists


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


@pytest.mark.usefixtures("quick_builders")
def test_cli_templates_command(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _cli()
    result = runner.invoke(app, ["templates", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in TEMPLATE_FILES:
        assert f"Wrote {tmp_path / name}" in result.output
    again = runner.invoke(app, ["templates", "--out-dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "Error: " in again.output and "use --force" in again.output
    forced = runner.invoke(app, ["templates", "--out-dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output


def test_cli_templates_rules_option(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "rules.toml"
    bad.write_text('name = "x"\n[[setting]]\nname = "nope"\nvalue = 1\nsource = "s"\n')
    result = runner.invoke(_cli(), ["templates", "--out-dir", str(tmp_path), "--rules", str(bad)])
    assert result.exit_code == 1
    assert "Error: " in result.output and "unknown setting" in result.output
    assert not (tmp_path / "account-classifier.xlsx").exists()
    help_text = runner.invoke(_cli(), ["templates", "--help"]).output
    for option in ("--out-dir", "--rules", "--force"):
        assert option in help_text


# ------------------------------------------------------------------------------ structure
@pytest.mark.parametrize("key", list(BUILDERS))
def test_every_template_has_the_required_parts(built: dict[str, Path], key: str) -> None:
    spec = SPECS[key]
    wb = load_workbook(built[key])
    assert wb.sheetnames[0] == "Instructions"
    assert wb["Instructions"]["B1"].value == spec.title
    assert spec.main_sheet in wb.sheetnames
    props = wb.properties
    assert props.title == spec.title and props.subject and props.description
    assert props.creator == "relationship-addin"
    custom = {p.name: p.value for p in wb.custom_doc_props.props}
    assert custom["Template"] == key and custom["Rulebook"] == default_rulebook().name
    tables = {name for ws in wb.worksheets for name in ws.tables}
    assert {s.table.name for s in _table_sheets(key)} <= tables
    assert len(wb.defined_names) >= 3
    for ws in wb.worksheets:
        if ws.title == "Rules":
            assert not ws.protection.sheet  # the rulebook is there to be edited
            continue
        assert ws.protection.sheet, ws.title
        assert not ws.protection.password, ws.title
        assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_area, ws.title
    for sheet in _table_sheets(key):
        ws = wb[sheet.name]
        assert ws.freeze_panes == f"{'B' if sheet.freeze_first_column else 'A'}" + str(
            sheet.header_row + 1
        )
        assert ws.print_title_rows == f"${sheet.header_row}:${sheet.header_row}"
        cols = sheet.table.columns
        if any(c.highlights or c.databar for c in cols) or "Notes" in sheet.table.headers:
            assert ws.conditional_formatting, f"{sheet.name}: no conditional formatting"
        inputs = [c for c in sheet.table.columns if c.is_input]
        if inputs:
            dvs = ws.data_validations.dataValidation
            assert dvs, sheet.name
            assert all(dv.prompt and dv.showInputMessage for dv in dvs)
            assert all(dv.error for dv in dvs if dv.type)


@pytest.mark.parametrize("key", list(BUILDERS))
def test_inputs_are_styled_apart_from_formulas_and_only_formulas_are_locked(
    built: dict[str, Path], key: str
) -> None:
    wb = load_workbook(built[key])
    checked = 0
    for sheet in _table_sheets(key):
        ws = wb[sheet.name]
        for i, col in enumerate(sheet.table.columns, 1):
            for r in range(sheet.header_row + 1, sheet.header_row + sheet.table.capacity + 1):
                cell = ws.cell(r, i)
                if col.is_input:
                    assert cell.style == INPUT_STYLE, (sheet.name, cell.coordinate)
                    assert cell.protection.locked is False, (sheet.name, cell.coordinate)
                else:
                    assert cell.protection.locked is True, (sheet.name, cell.coordinate)
                    if col.formula is not None:
                        assert cell.style == FORMULA_STYLE, (sheet.name, cell.coordinate)
                        assert str(cell.value).startswith("="), (sheet.name, cell.coordinate)
                checked += 1
        for k, named in enumerate(sheet.cells):
            cell = ws.cell(4 + k, 2)
            assert cell.style == (INPUT_STYLE if named.is_input else FORMULA_STYLE)
            assert cell.protection.locked is (not named.is_input)
    assert checked > 100
    # every formula anywhere sits in a locked cell
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("=") and ws.title != "Rules":
                    named_input = c.style == INPUT_STYLE and c.column == 2 and c.row < 10
                    assert c.protection.locked or named_input, (ws.title, c.coordinate)


@pytest.mark.parametrize("key", list(BUILDERS))
def test_formulas_are_portable(built: dict[str, Path], key: str) -> None:
    """No function newer than Excel 2016 or missing from LibreOffice / Google Sheets; plain
    formulas hold no structured references. Only the add-in columns call the add-in."""
    formulas = _all_formulas(built[key])
    assert formulas
    wb = load_workbook(built[key])
    addin_cells = set()
    if key == "account-classifier":
        spec = SPECS[key].sheet("Accounts")
        ws = wb["Accounts"]
        for i, col in enumerate(spec.table.columns, 1):
            if col.kind == "addin":
                assert col.header in ADDIN_HEADERS
                for r in range(spec.header_row + 1, spec.header_row + spec.table.capacity + 1):
                    addin_cells.add(("Accounts", ws.cell(r, i).coordinate))
        assert len({c for _, c in addin_cells}) == 3 * spec.table.capacity
    problems = []
    for sheet, where, formula in formulas:
        plain = (sheet, where) not in addin_cells
        problems += [f"{sheet}!{where}: {p}" for p in fx.portability_problems(formula, plain=plain)]
        if not plain:
            assert fx.functions_used(formula) & set(fx.ADDIN_FUNCTIONS)
    assert problems == []


def test_portability_check_catches_forbidden_functions() -> None:
    bad = {
        "=LET(x,1,x)": "LET",
        "=XLOOKUP(A1,B:B,C:C)": "XLOOKUP",
        '=TEXTJOIN(",",TRUE,A1:A3)': "TEXTJOIN",
        "=IFS(A1>1,1,TRUE,2)": "IFS",
        "=MAXIFS(A:A,B:B,1)": "MAXIFS",
        "=CONCAT(A1,B1)": "CONCAT",
        "=SUM(FILTER(A:A,B:B=1))": "FILTER",
        "=SWITCH(A1,1,2)": "SWITCH",
        "=_xlfn.UNIQUE(A:A)": "UNIQUE",
    }
    for formula, name in bad.items():
        assert any(name in p for p in fx.portability_problems(formula)), formula
    assert fx.portability_problems('=CONCATENATE(A1,"LET(")') == []
    assert fx.portability_problems("=COUNTIFS(A:A,1)+SUMIFS(B:B,A:A,1)") == []
    assert fx.portability_problems("=Accounts[[#This Row],[Account]]")
    assert fx.portability_problems("=Accounts[[#This Row],[Account]]", plain=False) == []


def test_formulas_read_every_keyword_and_weight_from_the_rules_sheet(
    built: dict[str, Path],
) -> None:
    """No keyword, synonym or setting is written into a formula: all come from Rules."""
    rb = default_rulebook()
    text = "\n".join(f for s, _, f in _all_formulas(built["account-classifier"]) if s != "Rules")
    literals = set(re.findall(r'"((?:[^"]|"")*)"', text))
    keywords = {k for s in rb.signals for k in s.keywords} | {
        k for b in rb.buyer_rules for k in b.keywords
    }
    synonyms = {syn for v in rb.vocabularies for syn in v.synonyms}
    allowed = {"true", "false", "yes", "no"} | {s.id for s in rb.signals} | set(rb.field_names())
    leaked = sorted((keywords | synonyms) & literals - allowed)
    assert leaked == []
    assert re.search(r"\b(40|50)\b", text) is None  # base and threshold come from SUMIFS


# ------------------------------------------------------------------------------ classifier
def test_classifier_headers_map_to_exactly_the_input_fields() -> None:
    rb = default_rulebook()
    spec = SPECS["account-classifier"].sheet("Accounts").table
    mapping = map_columns(spec.headers, rb)
    inputs = {c.field: c.header for c in spec.columns if c.field}
    assert mapping.fields == inputs
    assert list(inputs) == rb.field_names()
    expected = [
        "Account",
        "Business type",
        "Offering",
        "Payment model",
        "Relationship months",
        "Customer since",
        "Purchases per year",
        "Personalization",
        "Advice",
        "Contacts per month",
        "Personal use",
        "Decision days",
        "Price focus",
        "Referrals",
    ]
    assert list(inputs.values()) == expected
    visible = [c.header for c in spec.columns if not c.helper]
    for header in (fx.TYPE_FORMULA, fx.SCORE_FORMULA, *ADDIN_HEADERS):
        assert header in visible
    assert visible.index(fx.TYPE_FORMULA) + 3 == visible.index(fx.TYPE_ADDIN)  # side by side


def test_drop_downs_come_from_the_vocabularies_and_read_back_as_themselves(
    built: dict[str, Path],
) -> None:
    rb = default_rulebook()
    spec = SPECS["account-classifier"].sheet("Accounts")
    ws = load_workbook(built["account-classifier"])["Accounts"]
    lists = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
    for i, col in enumerate(spec.table.columns, 1):
        if col.kind != "choice":
            continue
        values = rb.vocabulary_values(col.field)
        assert [c.lower() for c in col.choices] == values
        dv = lists[f"{ws.cell(spec.header_row + 1, i).coordinate}"]
        assert dv.type == "list" and dv.formula1 == '"' + ",".join(col.choices) + '"'
        assert dv.errorStyle == "warning" and "Rules sheet" in dv.error
        for choice, value in zip(col.choices, values, strict=True):
            assert rb.vocabulary(col.field)[fold_value(choice)] == value


def test_classifier_ships_marked_sample_rows_and_an_as_of_cell(built: dict[str, Path]) -> None:
    spec = SPECS["account-classifier"].sheet("Accounts")
    wb = load_workbook(built["account-classifier"])
    ws = wb["Accounts"]
    assert wb.defined_names[fx.AS_OF].attr_text == "'Accounts'!$B$4"
    assert ws["B4"].value == "=TODAY()"
    notes = spec.table.headers.index("Notes") + 1
    samples = [ws.cell(spec.header_row + 1 + k, notes).value for k in range(4)]
    assert all(str(s).startswith(SAMPLE_PREFIX) for s in samples)
    assert ws.cell(spec.header_row + 5, 1).value is None  # then empty input rows
    helper = spec.table.headers.index(fx.sig_header("advice_yes")) + 1
    group = [d for d in ws.column_dimensions.values() if d.min <= helper <= d.max]
    assert group and group[0].hidden and group[0].outline_level == 1  # collapsed helpers
    first_helper = min(i for i, c in enumerate(spec.table.columns, 1) if c.helper)
    assert group[0].min == first_helper and group[0].max == len(spec.table.columns)


def test_classifier_fill_rows_from_analyst_headers(labeled: pd.DataFrame) -> None:
    wb = build_classifier(rows=labeled, as_of=dt.date(2026, 11, 22))
    spec_rows = len(labeled)
    ws = wb["Accounts"]
    header_row = 7
    headers = [c.value for c in ws[header_row]]
    assert ws.tables["Accounts"].ref.endswith(str(header_row + spec_rows))
    first = {h: ws.cell(header_row + 1, i + 1).value for i, h in enumerate(headers)}
    src = labeled.iloc[0]
    assert first["Account"] == src["Account"]
    assert first["Business type"] == src["Industry"]
    assert first["Purchases per year"] is None  # blank stays blank
    assert first["Notes"] is None  # filled rows are not samples
    assert ws["B4"].value == dt.date(2026, 11, 22)
    with pytest.raises(InputError, match="none of the rows' columns"):
        build_classifier(rows=[{"colour": "red"}])


def test_fill_rows_keeps_formula_like_text_as_text(tmp_path: Path) -> None:
    wb = build_classifier(rows=[{"Account": "=1+1", "Industry": "Law firm"}])
    path = save_workbook(wb, tmp_path / "x.xlsx")
    ws = load_workbook(path)["Accounts"]
    assert ws["A8"].value == "=1+1" and ws["A8"].data_type == "s"


def test_fill_rows_typed_values_and_capacity(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {
            "Account": ["A", "B"],
            "Tenure (months)": [12.0, float("nan")],
            "Customer since": [pd.Timestamp("2020-01-31"), None],
        }
    )
    wb = build_classifier(rows=rows, capacity=10)
    ws = wb["Accounts"]
    assert ws.tables["Accounts"].ref == f"A7:{ws.tables['Accounts'].ref.split(':')[1][:-2]}17"
    assert ws["E8"].value == 12 and ws["E9"].value is None
    assert ws["F8"].value == dt.datetime(2020, 1, 31)
    with pytest.raises(ValueError, match="capacity"):
        build_classifier(rows=rows, capacity=1)


def test_input_headers_fall_back_for_custom_fields() -> None:
    data = rulebook_to_dict(default_rulebook())
    data["field"].append(
        {
            "name": "nps",
            "kind": "number",
            "description": "Net promoter score",
            "headers": ["net promoter score"],
            "source": "convention: test",
        }
    )
    rb = rulebook_from_dict(data, "test")
    assert input_header(rb, "nps") == "Nps"
    wb = build_classifier(rb)
    assert "Nps" in [c.value for c in wb["Accounts"][7]]


def test_batch_tool_classifies_a_filled_in_template(tmp_path: Path, labeled: pd.DataFrame) -> None:
    """The batch tool finds the Accounts table and classifies it like the engine.

    The template's sheets are protected, so the batch tool will not write into them: it says
    so, and writes the results to a separate workbook with results_only.
    """
    if importlib.util.find_spec("relationships.workbook_batch") is None:
        pytest.skip(
            "relationships.workbook_batch (the .xlsx path of the batch tool) is not written yet"
        )
    from relationships.batch import classify_file

    src = save_workbook(build_classifier(rows=labeled), tmp_path / "filled.xlsx")
    refused = classify_file(src, out=tmp_path / "in-place.xlsx", sheet="Accounts")
    assert refused.verdict == "refused"
    assert "protected" in refused.reason and "--results-only" in refused.reason

    out = tmp_path / "filled.classified.xlsx"
    report = classify_file(src, out=out, sheet="Accounts", results_only=True)
    assert report.ok, report.reason
    assert report.rows == len(labeled)
    inputs = {
        c.header: c.field for c in SPECS["account-classifier"].sheet("Accounts").table.columns
    }
    assert report.mapping == {h: f for h, f in inputs.items() if f}  # helper columns ignored
    expected = classify(labeled)
    ws = load_workbook(out, read_only=True)["Results"]
    rows = list(ws.iter_rows(values_only=True))
    got = pd.DataFrame(rows[1:], columns=rows[0])
    assert list(got["Account"]) == list(labeled["Account"])
    assert list(got["relationship_type"]) == list(expected["relationship_type"])
    assert list(got["client_score"].astype(float)) == list(expected["client_score"].astype(float))
    assert list(got["buyer_type"]) == list(expected["buyer_type"])


# ------------------------------------------------------------------------------ instructions
def _normal(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split())


def test_instructions_quote_the_seeds_verbatim(seeds_dir: Path) -> None:
    quotes = 0
    for spec in SPECS.values():
        for para in spec.instructions:
            if para.kind != "quote":
                continue
            seed = _normal((seeds_dir / para.source).read_text(encoding="utf-8"))
            assert _normal(para.text) in seed, (spec.key, para.text)
            quotes += 1
    assert quotes >= 12


def test_plan_and_tracker_follow_the_seed_steps() -> None:
    plan = SPECS["client-strategy-plan"]
    assert [s.name for s in plan.sheets][:6] == [
        "Personas",
        "Services",
        "Cadence",
        "Stories",
        "Value-added",
        "Dashboard",
    ]
    personas = plan.sheet("Personas").table
    assert {"Needs", "Pain points", "Preferences"} <= set(personas.headers)
    cadence = plan.sheet("Cadence").table
    assert {"Touchpoint", "Channel", "Frequency", "Owner", "Next date", "Status"} <= set(
        cadence.headers
    )
    assert len(plan.sheet("Dashboard").charts) == 3
    tracker = SPECS["conversion-tracker"]
    conv = tracker.sheet("Tracker").table
    for header in (
        "Client score",
        "Type",
        "Tip 1",
        "Owner",
        "Promises made",
        "Promises kept",
        "Response (hours)",
        "Last follow-up",
        "Next follow-up",
        "Stage",
    ):
        assert header in conv.headers
    tips = tracker.sheet("Tips").table
    rb = default_rulebook()
    assert [r["Tip"] for r in tips.rows] == [t.title for t in rb.tips if t.kind == "conversion"]
    assert tracker.sheet("Summary").charts


# ------------------------------------------------------------------------------ docs
DOCS = Path(__file__).resolve().parents[1] / "docs"
README = DOCS.parent / "README.md"  # the templates section lives in the README


def test_docs_show_the_formulas_the_builder_writes() -> None:
    text = README.read_text(encoding="utf-8")
    ws = build_classifier()["Accounts"]
    written = {"".join(str(c.value).split()) for c in ws[8] if str(c.value).startswith("=")}
    block = re.search(r"```\s*\n\s*(=IF\(OR\(Scoring.*?)```", text, re.S)
    assert block and "".join(block.group(1).split()) in written
    inline = re.search(r"`(=IF\(AO8=0.*?)`", text)
    assert inline and inline.group(1) in written
    for command in ("relationship templates", "scripts/render_previews.py"):
        assert command in text


def test_previews_are_committed_small_and_shown() -> None:
    text = README.read_text(encoding="utf-8")
    for key in BUILDERS:
        png = DOCS / "previews" / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png.stat().st_size < 400_000, png
        assert f"(docs/previews/{key}.png)" in text
