"""Unit tests of relationships.xlsxio: reading, lossless writing, safe output handling."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.worksheet.table import Table, TableStyleInfo

from relationships import xlsxio as X
from relationships.errors import (
    InputError,
    LossyWorkbookError,
    OutputExistsError,
)
from relationships.files import umask

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


# --------------------------------------------------------------------------- helpers


def ws_xml(body: str, prefix: str = "") -> str:
    """A worksheet part around *body* (sheetData etc.), optionally with a 'x:' prefix."""
    if prefix:
        p = prefix.rstrip(":")
        return (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<{p}:worksheet xmlns:{p}="{MAIN}" xmlns:r="{REL}">{body}</{p}:worksheet>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{MAIN}" xmlns:r="{REL}">{body}</worksheet>'
    )


STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def build_xlsx(
    path: Path,
    sheets: list[tuple[str, str]],
    *,
    sst: list[str] | None = None,
    tables: dict[int, list[str]] | None = None,
    defined_names: str = "",
    workbook_extra: str = "",
    main_ct: str = f"{CT}.sheet.main+xml",
    extra_parts: dict[str, bytes] | None = None,
) -> Path:
    """Write a minimal but complete package from handwritten XML parts."""
    tables = tables or {}
    ov = [f'<Override PartName="/xl/workbook.xml" ContentType="{main_ct}"/>']
    ov.append(f'<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/>')
    rels = [
        f'<Relationship Id="rIdS" Type="{REL}/styles" Target="styles.xml"/>',
    ]
    parts: dict[str, bytes] = {}
    sheet_entries = []
    tcount = 0
    for i, (name, xml) in enumerate(sheets, start=1):
        parts[f"xl/worksheets/sheet{i}.xml"] = xml.encode()
        ov.append(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{CT}.worksheet+xml"/>'
        )
        rels.append(
            f'<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        )
        sheet_entries.append(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
        srels = []
        for txml in tables.get(i - 1, []):
            tcount += 1
            parts[f"xl/tables/table{tcount}.xml"] = txml.encode()
            ov.append(
                f'<Override PartName="/xl/tables/table{tcount}.xml" ContentType="{CT}.table+xml"/>'
            )
            srels.append(
                f'<Relationship Id="rIdT{tcount}" Type="{REL}/table" '
                f'Target="../tables/table{tcount}.xml"/>'
            )
        if srels:
            parts[f"xl/worksheets/_rels/sheet{i}.xml.rels"] = (
                f'<Relationships xmlns="{PKG}">{"".join(srels)}</Relationships>'
            ).encode()
    if sst is not None:
        ov.append(
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>'
        )
        rels.append(
            f'<Relationship Id="rIdSS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        )
        items = "".join(s if s.startswith("<si") else f"<si><t>{s}</t></si>" for s in sst)
        parts["xl/sharedStrings.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="{MAIN}">{items}</sst>'
        ).encode()
    parts["xl/styles.xml"] = STYLES.encode()
    parts["xl/workbook.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}">{workbook_extra}<bookViews><workbookView/>'
        f"</bookViews><sheets>{''.join(sheet_entries)}</sheets>{defined_names}</workbook>"
    ).encode()
    parts["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>'
    ).encode()
    parts.update(extra_parts or {})
    ct = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        + "".join(ov)
        + "</Types>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", ct)
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parts_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def results_for(frame: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    cols = ["relationship_type", "client_score", "reasons"][:n]
    data = {
        "relationship_type": [("client" if r % 2 else "customer") for r in frame.index],
        "client_score": [r * 0.5 for r in frame.index],
        "reasons": [f"row {r}" for r in frame.index],
    }
    return pd.DataFrame({c: data[c] for c in cols}, index=frame.index)


def cells_by_ref(sheet_xml: bytes) -> dict[str, bytes]:
    return {
        m.group(1).decode(): m.group(0)
        for m in re.finditer(rb'<c r="([A-Z]+[0-9]+)"[^>]*?(?:/>|>.*?</c>)', sheet_xml, re.S)
    }


SHEET_ROWS = (
    '<dimension ref="A1:D6"/><sheetData>'
    '<row r="1" spans="1:4"><c r="A1" s="1" t="s"><v>0</v></c><c r="B1" s="1" t="s"><v>1</v></c>'
    '<c r="C1" s="1" t="s"><v>2</v></c><c r="D1" s="1" t="s"><v>3</v></c></row>'
    '<row r="2" spans="1:4"><c r="A2" t="s"><v>4</v></c><c r="B2"><v>12</v></c>'
    '<c r="C2" s="2"><v>45292</v></c><c r="D2"><f>B2*2</f><v>24</v></c></row>'
    '<row r="3" spans="1:4"><c r="A3" t="inlineStr"><is><r><t>Ri</t></r><r><rPr><b/></rPr>'
    '<t xml:space="preserve">ch </t></r><rPh sb="0" eb="1"><t>PHON</t></rPh></is></c>'
    '<c r="B3"><v>-1.5E3</v></c><c r="C3" s="2"><v>45293.5</v></c>'
    '<c r="D3" t="str"><f>"a"&amp;"b"</f><v>ab</v></c></row>'
    '<row r="4" spans="1:4"><c r="A4" s="1"/><c r="B4" s="1"/></row>'
    '<row r="5" spans="1:4"><c r="A5" t="b"><v>1</v></c><c r="B5" t="e"><v>#N/A</v></c>'
    '<c r="C5" s="3"><v>45294</v></c><c r="D5"><f>1/0</f></c></row>'
    '<row r="6" spans="1:4"><c r="A6" t="s"><v>5</v></c><c r="B6"><v>7</v></c></row>'
    "</sheetData>"
)
SST = ["Name", "Amount", "Since", "Total", "Acme &amp; Co", "x_x000D_y"]


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    return build_xlsx(tmp_path / "in.xlsx", [("Data", ws_xml(SHEET_ROWS))], sst=SST)


# --------------------------------------------------------------------------- reading


def test_candidates_and_read_values(basic: Path) -> None:
    with X.Workbook.open(basic) as wb:
        assert wb.sheet_names() == ["Data"]
        assert not wb.is_macro_enabled
        (cand,) = wb.candidates()
        assert (cand.header_row, cand.first_col, cand.last_col, cand.last_row) == (1, 1, 4, 6)
        assert cand.headers == ("Name", "Amount", "Since", "Total")
        assert cand.table_name is None
        rr = wb.read(cand)
    f = rr.frame
    assert list(f.columns) == ["Name", "Amount", "Since", "Total"]
    assert all(dtype == object for dtype in f.dtypes)  # noqa: E721
    assert list(f.index) == [2, 3, 5, 6]  # row 4 holds only styled empty cells
    assert rr.blank_rows_skipped == 1
    assert rr.columns == ["A", "B", "C", "D"]
    assert rr.date_columns == {"Since"}
    assert f.loc[2].tolist() == ["Acme & Co", 12, 45292, 24]
    assert type(f.loc[2, "Amount"]) is int
    assert f.loc[3].tolist() == ["Rich ", -1500.0, 45293.5, "ab"]
    assert f.loc[5].tolist() == [True, "#N/A", 45294, None]  # formula without cached value
    assert f.loc[6].tolist() == ["x\ry", 7, None, None]


def test_fast_and_exact_scanner_agree(basic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with X.Workbook.open(basic) as wb:
        cand = wb.candidates()[0]
        fast = wb.read(cand)

        def no_fast(*a: object, **k: object) -> None:
            raise X._NeedSlow

        monkeypatch.setattr(X.Workbook, "_fast_read", no_fast)
        monkeypatch.setattr(X.Workbook, "_fast_cells", no_fast)
        monkeypatch.setattr(X.Workbook, "_extent_fast", no_fast)
        assert wb.candidates() == [cand]
        slow = wb.read(cand)
    pd.testing.assert_frame_equal(fast.frame, slow.frame)
    assert fast.date_columns == slow.date_columns
    assert fast.blank_rows_skipped == slow.blank_rows_skipped


def test_header_row_option_and_title_rows(tmp_path: Path) -> None:
    body = (
        "<sheetData>"
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Report title</t></is></c></row>'
        '<row r="3"><c r="B3" t="inlineStr"><is><t>Name</t></is></c>'
        '<c r="C3" t="inlineStr"><is><t>Name</t></is></c><c r="E3" t="inlineStr"><is><t> </t></is>'
        '</c></row><row r="4"><c r="B4"><v>1</v></c><c r="C4"><v>2</v></c><c r="D4"><v>3</v></c>'
        "</row></sheetData>"
    )
    path = build_xlsx(tmp_path / "t.xlsx", [("S", ws_xml(body))])
    with X.Workbook.open(path) as wb:
        (c,) = wb.candidates()
        assert (c.header_row, c.first_col, c.last_col, c.last_row) == (3, 2, 5, 4)
        rr = wb.read(c)
        assert list(rr.frame.columns) == ["Name", "Name (Column C)", "Column D", "Column E"]
        (c1,) = wb.candidates(header_row=1)
        assert c1.header_row == 1 and c1.first_col == 1 and c1.last_row == 4


def test_excel_table_candidate_with_totals(tmp_path: Path) -> None:
    body = (
        '<dimension ref="B2:C5"/><sheetData>'
        '<row r="2"><c r="B2" t="inlineStr"><is><t>Client</t></is></c>'
        '<c r="C2" s="1" t="inlineStr"><is><t>Sales</t></is></c></row>'
        '<row r="3"><c r="B3" t="inlineStr"><is><t>a</t></is></c><c r="C3"><v>1</v></c></row>'
        '<row r="4"><c r="B4" t="inlineStr"><is><t>b</t></is></c><c r="C4"><v>2</v></c></row>'
        '<row r="5"><c r="B5" t="inlineStr"><is><t>Total</t></is></c><c r="C5"><f>SUBTOTAL(109,'
        "[Sales])</f><v>3</v></c></row></sheetData>"
        '<tableParts count="1"><tablePart r:id="rIdT1"/></tableParts>'
    )
    table = (
        f'<table xmlns="{MAIN}" id="1" name="Sales" displayName="Sales" ref="B2:C5" '
        'totalsRowCount="1"><autoFilter ref="B2:C4"/><tableColumns count="2">'
        '<tableColumn id="1" name="Client" totalsRowLabel="Total"/>'
        '<tableColumn id="2" name="Sales" totalsRowFunction="sum"/></tableColumns>'
        '<tableStyleInfo name="TableStyleMedium2" showRowStripes="1"/></table>'
    )
    path = build_xlsx(tmp_path / "t.xlsx", [("S", ws_xml(body))], tables={0: [table]})
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(path) as wb:
        (c,) = wb.candidates()
        assert c.table_name == "Sales" and c.table_part == "xl/tables/table1.xml"
        assert (c.header_row, c.first_col, c.last_col, c.last_row) == (2, 2, 3, 4)
        rr = wb.read(c)
        assert rr.frame["Sales"].tolist() == [1, 2]
        res = pd.DataFrame({"Sales": ["x", "y"], "score": [1, None]}, index=rr.frame.index)
        X.write_classified(wb, c, res, out, [])
    p = parts_of(out)
    t = p["xl/tables/table1.xml"].decode()
    assert 'ref="B2:E5"' in t and '<autoFilter ref="B2:E4"/>' in t
    assert '<tableColumns count="4">' in t
    assert '<tableColumn id="3" name="Sales2"/><tableColumn id="4" name="score"/>' in t
    cells = cells_by_ref(p["xl/worksheets/sheet1.xml"])
    assert cells["D2"] == b'<c r="D2" s="1" t="inlineStr"><is><t>Sales2</t></is></c>'
    assert "D5" not in cells and "E4" not in cells  # totals row untouched, None not written
    wb2 = openpyxl.load_workbook(out)
    assert wb2["S"]["E3"].value == 1
    assert wb2["S"].tables["Sales"].ref == "B2:E5"


def test_prefixed_namespace_and_implicit_refs(tmp_path: Path) -> None:
    body = (
        '<x:sheetData><x:row><x:c t="inlineStr"><x:is><x:t>H1</x:t></x:is></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>H2</x:t></x:is></x:c></x:row>'
        "<x:row><x:c><x:v>1</x:v></x:c><x:c><x:v>2</x:v></x:c></x:row>"
        "<x:row/><x:row><x:c><x:v>3</x:v></x:c></x:row></x:sheetData>"
    )
    path = build_xlsx(tmp_path / "p.xlsx", [("S", ws_xml(body, prefix="x:"))])
    out = tmp_path / "o.xlsx"
    with X.Workbook.open(path) as wb:
        (c,) = wb.candidates()
        assert (c.header_row, c.last_col, c.last_row) == (1, 2, 4)
        rr = wb.read(c)
        assert rr.frame.to_dict("index") == {2: {"H1": 1, "H2": 2}, 4: {"H1": 3, "H2": None}}
        X.write_classified(wb, c, results_for(rr.frame, 1), out, [])
    xml = parts_of(out)["xl/worksheets/sheet1.xml"]
    assert b'<x:c r="C1" t="inlineStr"><x:is><x:t>relationship_type</x:t></x:is></x:c>' in xml
    assert b'<x:c r="C4" t="inlineStr"><x:is><x:t>customer</x:t></x:is></x:c></x:row>' in xml
    ws = openpyxl.load_workbook(out)["S"]
    assert [c.value for c in ws[4]] == [3, None, "customer"]


# --------------------------------------------------------------------------- writing


def test_write_classified_is_lossless(basic: Path, tmp_path: Path) -> None:
    before = sha256(basic)
    out = tmp_path / "out.xlsx"
    extra = [
        X.NewSheet(
            "Summary",
            [["Type", "Count"], ["client", 2], ["customer", 2]],
            col_widths=[18, 8],
            chart=X.BarChart("Clients by type", (1, 2, 3), (2, 2, 3)),
        ),
        X.NewSheet("Summary", [["Row", "Problem"], [3, '=HYPERLINK("x")']]),
    ]
    with X.Workbook.open(basic) as wb:
        cand = wb.candidates()[0]
        rr = wb.read(cand)
        res = results_for(rr.frame)
        res.loc[3, "reasons"] = None
        assert X.write_classified(wb, cand, res, out, extra) == out
    assert sha256(basic) == before
    src, dst = parts_of(basic), parts_of(out)
    edited = {
        "xl/worksheets/sheet1.xml",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "[Content_Types].xml",
        "xl/styles.xml",
    }
    for name, data in src.items():
        assert name in dst
        if name not in edited:
            assert dst[name] == data, name
    old, new = (
        cells_by_ref(src["xl/worksheets/sheet1.xml"]),
        cells_by_ref(dst["xl/worksheets/sheet1.xml"]),
    )
    for ref, xml in old.items():
        assert new[ref] == xml
    assert new["E1"] == b'<c r="E1" s="1" t="inlineStr"><is><t>relationship_type</t></is></c>'
    assert new["F2"] == b'<c r="F2"><v>1</v></c>'
    assert "G3" not in new
    assert b'<dimension ref="A1:G6"/>' in dst["xl/worksheets/sheet1.xml"]
    assert b'<cols><col min="5" max="5"' in dst["xl/worksheets/sheet1.xml"]
    assert b'spans="1:7"' in dst["xl/worksheets/sheet1.xml"]
    assert "<f>B2*2</f><v>24</v>" in dst["xl/worksheets/sheet1.xml"].decode()
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Data", "Summary", "Summary (2)"]
    data = wb["Data"]
    assert [c.value for c in data[1]] == ["Name", "Amount", "Since", "Total"] + [
        "relationship_type",
        "client_score",
        "reasons",
    ]
    assert (
        data["G2"].value == "row 2" and data["G3"].value is None and data["E6"].value == "customer"
    )
    assert wb["Summary"]["A1"].font.b and wb["Summary"]["B3"].value == 2
    assert wb["Summary (2)"]["B2"].value == '=HYPERLINK("x")'
    assert wb["Summary (2)"]["B2"].data_type == "s"
    assert len(wb["Summary"]._charts) == 1
    styles = dst["xl/styles.xml"].decode()
    assert styles.startswith(src["xl/styles.xml"].decode()[: styles.index("<fonts")])
    assert '<cellXfs count="5">' in styles and '<fonts count="3">' in styles


def test_sheet_autofilter_and_filter_database_are_extended(tmp_path: Path) -> None:
    body = (
        SHEET_ROWS
        + '<autoFilter ref="A1:D6"/><mergeCells count="1"><mergeCell ref="A8:B8"/></mergeCells>'
    )
    names = (
        '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        "Data!$A$1:$D$6</definedName>"
        '<definedName name="keep">Data!$A$1</definedName></definedNames>'
    )
    path = build_xlsx(tmp_path / "in.xlsx", [("Data", ws_xml(body))], sst=SST, defined_names=names)
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(path) as wb:
        cand = wb.candidates()[0]
        X.write_classified(wb, cand, results_for(wb.read(cand).frame, 2), out, [])
    p = parts_of(out)
    assert b'<autoFilter ref="A1:F6"/>' in p["xl/worksheets/sheet1.xml"]
    assert b"Data!$A$1:$F$6</definedName>" in p["xl/workbook.xml"]
    assert b'<definedName name="keep">Data!$A$1</definedName>' in p["xl/workbook.xml"]
    openpyxl.load_workbook(out)


def test_style_only_cells_in_new_columns_are_replaced_and_cells_further_right_kept(
    tmp_path: Path,
) -> None:
    body = (
        "<sheetData>"
        '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="inlineStr"><is>'
        '<t>b</t></is></c><c r="C1" s="3"/><c r="H1" t="inlineStr"><is><t>note</t></is></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>2</v></c><c r="C2" s="2"/><c r="D2" s="3"/>'
        '<c r="Z2"><v>9</v></c></row>'
        "</sheetData>"
    )
    path = build_xlsx(tmp_path / "in.xlsx", [("S", ws_xml(body))])
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(path) as wb:
        cand = X.TableCandidate("S", "xl/worksheets/sheet1.xml", None, None, 1, 1, 2, 2, ("a", "b"))
        res = pd.DataFrame({"r1": ["x"], "r2": [None]}, index=[2])
        X.write_classified(wb, cand, res, out, [])
    xml = parts_of(out)["xl/worksheets/sheet1.xml"]
    assert (
        b'<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>2</v></c>'
        b'<c r="C2" s="2" t="inlineStr"><is><t>x</t></is></c><c r="D2" s="3"/>'
        b'<c r="Z2"><v>9</v></c>'
        b"</row>"
    ) in xml
    assert b'<c r="C1" s="3" t="inlineStr"><is><t>r1</t></is></c><c r="D1" t="inlineStr">' in xml
    ws = openpyxl.load_workbook(out)["S"]
    assert ws["H1"].value == "note" and ws["Z2"].value == 9 and ws["C2"].value == "x"


def test_missing_rows_are_created_in_order(tmp_path: Path) -> None:
    body = (
        "<sheetData>"
        '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="inlineStr"><is>'
        '<t>b</t></is></c></row><row r="2"><c r="A2"><v>1</v></c></row>'
        '<row r="5"><c r="A5"><v>5</v></c></row></sheetData>'
    )
    path = build_xlsx(tmp_path / "in.xlsx", [("S", ws_xml(body))])
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(path) as wb:
        cand = wb.candidates()[0]
        assert cand.last_row == 5
        res = pd.DataFrame({"r": ["two", "four", "five"]}, index=[2, 4, 5])
        X.write_classified(wb, cand, res, out, [])
    xml = parts_of(out)["xl/worksheets/sheet1.xml"]
    assert (
        b'</row><row r="4"><c r="C4" t="inlineStr"><is><t>four</t></is></c></row><row r="5">' in xml
    )
    ws = openpyxl.load_workbook(out)["S"]
    assert [ws[f"C{r}"].value for r in range(1, 6)] == ["r", "two", None, "four", "five"]


def test_value_rendering(basic: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    weird = [
        "=1+1",
        "+cmd|' /C calc'!A0",
        "-2",
        "@SUM(A1)",
        "\tTab",
        "bell\x07 and _x0041_ & <tag>",
    ]
    idx = [2, 3, 5, 6]
    vals = {
        "text": weird[:4],
        "more": weird[4:] + [True, float("nan")],
        "num": [1, 2.5, float("inf"), -0.0],
    }
    with X.Workbook.open(basic) as wb:
        cand = wb.candidates()[0]
        X.write_classified(wb, cand, pd.DataFrame(vals, index=idx), out, [])
    xml = parts_of(out)["xl/worksheets/sheet1.xml"].decode()
    assert "<f>" not in xml.split("<sheetData>")[1].replace("<f>B2*2</f>", "").replace(
        '<f>"a"&amp;"b"</f>', ""
    ).replace("<f>1/0</f>", "")
    assert '<c r="E2" t="inlineStr"><is><t>=1+1</t></is></c>' in xml
    assert "bell and _x005F_x0041_ &amp; &lt;tag&gt;" in xml
    assert '<c r="F5" t="b"><v>1</v></c>' in xml and 'r="F6"' not in xml
    wb = openpyxl.load_workbook(out)
    ws = wb["Data"]
    assert [ws[f"E{r}"].value for r in idx] == weird[:4]
    assert ws["F2"].value == "\tTab"
    assert [ws[f"G{r}"].value for r in idx] == [1, 2.5, "inf", 0]


def test_refuses_to_overwrite_cells_right_of_table(tmp_path: Path) -> None:
    body = SHEET_ROWS.replace(
        '<c r="B6"><v>7</v></c></row>', '<c r="B6"><v>7</v></c><c r="F6"><v>1</v></c></row>'
    ).replace(
        '<c r="D2"><f>B2*2</f><v>24</v></c>',
        '<c r="D2"><f>B2*2</f><v>24</v></c><c r="E2"><f>1</f></c>',
    )
    path = build_xlsx(tmp_path / "in.xlsx", [("Data", ws_xml(body))], sst=SST)
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(path) as wb:
        cand = X.TableCandidate("Data", "xl/worksheets/sheet1.xml", None, None, 1, 1, 4, 6, ())
        res = results_for(wb.read(cand).frame)
        with pytest.raises(
            LossyWorkbookError, match=r"cells E2:F6 right of the table are not empty"
        ):
            X.write_classified(wb, cand, res, out, [])
    assert not out.exists()
    assert list(tmp_path.glob(".*.tmp")) == []


def test_refuses_merged_cells_and_protection(tmp_path: Path) -> None:
    merged = SHEET_ROWS + '<mergeCells count="1"><mergeCell ref="E3:F3"/></mergeCells>'
    protected = SHEET_ROWS + '<sheetProtection sheet="1" objects="1"/>'
    for body, pattern in ((merged, "merged cells E3:F3"), (protected, "sheet is protected")):
        path = build_xlsx(tmp_path / "in.xlsx", [("Data", ws_xml(body))], sst=SST)
        with X.Workbook.open(path) as wb:
            cand = wb.candidates()[0]
            with pytest.raises(LossyWorkbookError, match=pattern):
                X.write_classified(
                    wb, cand, results_for(wb.read(cand).frame), tmp_path / "o.xlsx", []
                )
        assert not (tmp_path / "o.xlsx").exists()


def test_refuses_locked_structure_and_query_tables(tmp_path: Path, basic: Path) -> None:
    path = build_xlsx(
        tmp_path / "lock.xlsx",
        [("Data", ws_xml(SHEET_ROWS))],
        sst=SST,
        workbook_extra='<workbookProtection lockStructure="1"/>',
    )
    with X.Workbook.open(path) as wb:
        cand = wb.candidates()[0]
        res = results_for(wb.read(cand).frame)
        with pytest.raises(LossyWorkbookError, match="structure is protected"):
            X.write_classified(wb, cand, res, tmp_path / "o.xlsx", [X.NewSheet("S", [["a"]])])
        X.write_classified(wb, cand, res, tmp_path / "o.xlsx", [])  # no new sheets: fine
    table = (
        f'<table xmlns="{MAIN}" id="1" name="Q" displayName="Q" ref="A1:D6" '
        'tableType="queryTable"><tableColumns count="4"><tableColumn id="1" name="Name"/>'
        '<tableColumn id="2" name="Amount"/><tableColumn id="3" name="Since"/>'
        '<tableColumn id="4" name="Total"/></tableColumns></table>'
    )
    path = build_xlsx(
        tmp_path / "q.xlsx", [("Data", ws_xml(SHEET_ROWS))], sst=SST, tables={0: [table]}
    )
    with X.Workbook.open(path) as wb:
        cand = wb.candidates()[0]
        with pytest.raises(LossyWorkbookError, match="linked to an external query"):
            X.write_classified(wb, cand, res, tmp_path / "o2.xlsx", [])


def test_no_room_right_of_table(tmp_path: Path) -> None:
    body = (
        '<sheetData><row r="1"><c r="XFC1" t="inlineStr"><is><t>a</t></is></c>'
        '<c r="XFD1" t="inlineStr"><is><t>b</t></is></c></row>'
        '<row r="2"><c r="XFD2"><v>1</v></c></row></sheetData>'
    )
    path = build_xlsx(tmp_path / "in.xlsx", [("S", ws_xml(body))])
    with X.Workbook.open(path) as wb:
        cand = wb.candidates()[0]
        assert cand.last_col == 16384
        with pytest.raises(LossyWorkbookError, match="no room"):
            X.write_classified(
                wb, cand, pd.DataFrame({"r": ["x"]}, index=[2]), tmp_path / "o.xlsx", []
            )


def test_output_safety(basic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(basic) as wb:
        cand = wb.candidates()[0]
        res = results_for(wb.read(cand).frame)
        with pytest.raises(InputError, match="overwrite the input"):
            X.write_classified(wb, cand, res, basic, [], force=True)
        with pytest.raises(InputError, match="extension .xlsx"):
            X.write_classified(wb, cand, res, tmp_path / "out.xlsm", [])
        with pytest.raises(InputError, match="outside the data rows"):
            X.write_classified(wb, cand, res.set_axis([1, 2, 3, 4]), out, [])
        out.write_bytes(b"keep me")
        with pytest.raises(OutputExistsError, match="exists already"):
            X.write_classified(wb, cand, res, out, [])
        assert out.read_bytes() == b"keep me"

        # a failure in the middle of writing the sheet leaves neither output nor temp file
        def boom(self: object, seg: bytes) -> bytes:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(X._SheetRewriter, "_rows", boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            X.write_classified(wb, cand, res, out, [], force=True)
        assert out.read_bytes() == b"keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.xlsx", "out.xlsx"]
        monkeypatch.undo()
        X.write_classified(wb, cand, res, out, [], force=True)
    assert zipfile.is_zipfile(out)
    assert out.stat().st_mode & 0o777 != 0o600 or (umask() & 0o066) == 0o066


def test_macro_workbook_keeps_vba_and_needs_xlsm(tmp_path: Path) -> None:
    path = build_xlsx(
        tmp_path / "m.xlsm",
        [("Data", ws_xml(SHEET_ROWS))],
        sst=SST,
        main_ct="application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        extra_parts={"xl/vbaProject.bin": b"\x00VBA\x01" * 100},
    )
    with X.Workbook.open(path) as wb:
        assert wb.is_macro_enabled and wb.expected_suffix == ".xlsm"
        cand = wb.candidates()[0]
        res = results_for(wb.read(cand).frame)
        with pytest.raises(InputError, match=r"\.xlsm"):
            X.write_classified(wb, cand, res, tmp_path / "o.xlsx", [])
        X.write_classified(wb, cand, res, tmp_path / "o.xlsm", [])
    assert parts_of(tmp_path / "o.xlsm")["xl/vbaProject.bin"] == b"\x00VBA\x01" * 100


def test_openpyxl_made_workbook_round_trip(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Clients"
    ws.append(["Client", "Orders", "Since"])
    for i in range(30):
        ws.append([f"c{i}", i, dt.date(2020, 1, 1) + dt.timedelta(days=i)])
    tab = Table(displayName="T", ref="A1:C31")
    tab.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
    ws.add_table(tab)
    ws2 = wb.create_sheet("Summary")
    ws2["A1"] = "taken"
    src = tmp_path / "src.xlsx"
    wb.save(src)
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(src) as book:
        (cand,) = book.candidates()
        rr = book.read(cand)
        assert rr.date_columns == {"Since"} and len(rr.frame) == 30
        X.write_classified(book, cand, results_for(rr.frame), out, [X.NewSheet("Summary", [["x"]])])
    back = openpyxl.load_workbook(out)
    assert back.sheetnames == ["Clients", "Summary", "Summary (2)"]
    assert back["Clients"].tables["T"].ref == "A1:F31"
    assert back["Clients"]["F31"].value == "row 31"


# --------------------------------------------------------------------------- results only


def test_write_results_only(tmp_path: Path) -> None:
    res = pd.DataFrame(
        {"relationship_type": ["client", "=cmd()", None], "score": [1.5, float("nan"), 3]},
        index=[2, 3, 7],
    )
    extra = [
        X.NewSheet(
            "Summary",
            [["Type", "Count"], ["a", 1], ["b", 2]],
            [12, 8],
            X.BarChart("T", (1, 2, 3), (2, 2, 3)),
        ),
        X.NewSheet("Problems", [["Row", "Problem"], [3, "bad\x01 value"]]),
    ]
    out = X.write_results_only(res, tmp_path / "r.xlsx", extra)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Results", "Summary", "Problems"]
    rows = [[c.value for c in r] for r in wb["Results"].iter_rows()]
    assert rows == [
        ["Row", "relationship_type", "score"],
        [2, "client", 1.5],
        [3, "=cmd()", None],
        [7, None, 3],
    ]
    assert wb["Results"]["B3"].data_type == "s"
    assert wb["Problems"]["B2"].value == "bad value"
    assert len(wb["Summary"]._charts) == 1
    with pytest.raises(OutputExistsError):
        X.write_results_only(res, out, extra)
    X.write_results_only(res, out, [], force=True, row_header=None)
    assert [c.value for c in openpyxl.load_workbook(out)["Results"][1]] == [
        "relationship_type",
        "score",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_helpers() -> None:
    assert X.col_letter(1) == "A" and X.col_letter(28) == "AB" and X.col_letter(16384) == "XFD"
    assert X.col_index("xfd") == 16384
    with pytest.raises(ValueError):
        X.col_index("XFE")
    assert X.clean_text("a\x00b\x1fc\td") == ("abc\td", True)
    assert X.clean_text("x" * 40000)[0] == "x" * 32767
    assert X._unique_sheet_name("a/b:c?" * 10, set()) == ("a_b_c_" * 10)[:31]
    taken = {"summary"}
    assert X._unique_sheet_name("Summary", taken) == "Summary (2)"
    assert X._unique_sheet_name("summary", taken) == "summary (3)"


def test_unusual_xml_is_read_exactly_but_not_edited(tmp_path: Path) -> None:
    commented = SHEET_ROWS.replace('<row r="6"', '<!-- <c r="A6"><v>999</v></c> --><row r="6"')
    utf16 = ws_xml(SHEET_ROWS).replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    for name, xml in (("comment", ws_xml(commented).encode()), ("utf16", utf16)):
        path = tmp_path / f"{name}.xlsx"
        build_xlsx(path, [("Data", "")], sst=SST, extra_parts={"xl/worksheets/sheet1.xml": xml})
        with X.Workbook.open(path) as wb:
            (cand,) = wb.candidates()
            rr = wb.read(cand)
            assert list(rr.frame.index) == [2, 3, 5, 6]
            assert rr.frame.loc[6, "Name"] == "x\ry"
            with pytest.raises(LossyWorkbookError, match="cannot edit"):
                X.write_classified(wb, cand, results_for(rr.frame), tmp_path / "o.xlsx", [])
