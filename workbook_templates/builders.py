"""Build the planning templates from their specs: each builder returns an openpyxl Workbook.

The caller saves (see :func:`workbook_templates.api.build_all` for safe writing). Every
template gets an Instructions sheet, input cells styled apart from formula cells (named
styles "Input cell" and "Formula cell"), Excel Tables, data validation with input and
error messages, conditional formatting, frozen header panes, print set-up (fit to width,
repeated header row), formula cells locked under sheet protection without a password,
named ranges and document properties.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from copy import copy
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import DataBarRule, FormulaRule
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.utils import column_index_from_string, get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from relationships import __version__
from relationships.errors import InputError
from relationships.rulebook import Rulebook, load_rulebook, write_rules_sheet
from relationships.schema import map_columns
from workbook_templates import formulas as fx
from workbook_templates.specs import (
    CLASSIFIER_TABLE,
    SAMPLE_PREFIX,
    ChartSpec,
    Column,
    NamedCell,
    Para,
    SheetSpec,
    TableSpec,
    TemplateSpec,
    classifier_spec,
    conversion_tracker_spec,
    input_header,
    strategy_plan_spec,
)

INPUT_STYLE = "Input cell"
FORMULA_STYLE = "Formula cell"
FIXED_STYLE = "Fixed cell"
HEADER_STYLE = "Header cell"
INSTRUCTIONS = "Instructions"

_THIN = Side(style="thin", color="BFBFBF")
_LOOKS = {
    "good": (PatternFill("solid", bgColor="C6EFCE"), Font(color="006100")),
    "bad": (PatternFill("solid", bgColor="FFC7CE"), Font(color="9C0006", bold=True)),
    "warn": (PatternFill("solid", bgColor="FFEB9C"), Font(color="9C5700")),
    "muted": (None, Font(italic=True, color="808080")),
}


def _named_styles(wb: Workbook) -> None:
    border = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
    styles = [
        NamedStyle(
            INPUT_STYLE,
            fill=PatternFill("solid", fgColor="FFF2CC"),
            border=border,
            protection=Protection(locked=False),
            alignment=Alignment(vertical="top"),
        ),
        NamedStyle(
            FORMULA_STYLE,
            font=Font(color="1F3864"),
            fill=PatternFill("solid", fgColor="EDEDED"),
            border=border,
            protection=Protection(locked=True),
            alignment=Alignment(vertical="top"),
        ),
        NamedStyle(
            FIXED_STYLE,
            border=border,
            protection=Protection(locked=True),
            alignment=Alignment(vertical="top"),
        ),
        NamedStyle(
            HEADER_STYLE,
            font=Font(bold=True, color="FFFFFF"),
            fill=PatternFill("solid", fgColor="305496"),
            border=border,
            alignment=Alignment(wrap_text=True, vertical="center"),
            protection=Protection(locked=True),
        ),
    ]
    for style in styles:
        wb.add_named_style(style)


# ------------------------------------------------------------------------------ layout
@dataclass
class TableLayout:
    sheet: str
    spec: TableSpec
    header_row: int
    letters: dict[str, str]

    @property
    def first(self) -> int:
        return self.header_row + 1

    @property
    def last(self) -> int:
        return self.header_row + self.spec.capacity

    def column_range(self, header: str, *, absolute: bool = True) -> str:
        col = self.letters[header]
        d = "$" if absolute else ""
        return f"{quote_sheetname(self.sheet)}!{d}{col}{d}{self.first}:{d}{col}{d}{self.last}"


@dataclass
class Layout:
    tables: dict[str, TableLayout] = field(default_factory=dict)

    def ranges(self) -> dict[str, str]:
        return {
            f"{name}.{header}": t.column_range(header)
            for name, t in self.tables.items()
            for header in t.letters
        }


def _layout(spec: TemplateSpec) -> Layout:
    layout = Layout()
    for sheet in spec.sheets:
        if sheet.table is None:
            continue
        letters = {c.header: get_column_letter(i) for i, c in enumerate(sheet.table.columns, 1)}
        if len(letters) != len(sheet.table.columns):
            raise ValueError(f"table {sheet.table.name}: duplicate column headers")
        layout.tables[sheet.table.name] = TableLayout(
            sheet.name, sheet.table, sheet.header_row, letters
        )
    return layout


# ------------------------------------------------------------------------------ generic build
def build_template(spec: TemplateSpec, rb: Rulebook) -> Workbook:
    """Build any template from its spec."""
    wb = Workbook()
    _named_styles(wb)
    layout = _layout(spec)
    ranges = layout.ranges()
    _instructions_sheet(wb.active, spec)
    for sheet in spec.sheets:
        ws = wb.create_sheet(sheet.name)
        if sheet.tab_color:
            ws.sheet_properties.tabColor = sheet.tab_color
        if sheet.kind == "rules":
            write_rules_sheet(rb, ws)
            _print_setup(ws, sheet, header_row=1, last_col=9, last_row=ws.max_row)
        elif sheet.kind == "scoring":
            _scoring_sheet(wb, ws, sheet, rb)
        else:
            _table_sheet(wb, ws, sheet, layout, ranges)
    for name, template in spec.extra_names:
        _define(wb, name, template)
    _properties(wb, spec, rb)
    wb.active = 0
    return wb


def _define(wb: Workbook, name: str, ref: str) -> None:
    if name in wb.defined_names:
        raise ValueError(f"name {name!r} is defined twice")
    wb.defined_names[name] = DefinedName(name, attr_text=ref)


def _absolute(sheet: str, cell: str) -> str:
    m = re.fullmatch(r"([A-Z]+)(\d+)", cell)
    assert m
    return f"{quote_sheetname(sheet)}!${m[1]}${m[2]}"


def _properties(wb: Workbook, spec: TemplateSpec, rb: Rulebook) -> None:
    p = wb.properties
    p.title = spec.title
    p.subject = spec.subject
    p.description = spec.description
    p.keywords = spec.keywords
    p.category = "Planning template"
    p.creator = "relationship-addin"
    p.lastModifiedBy = "relationship-addin"
    for name, value in (
        ("Template", spec.key),
        ("Rulebook", rb.name),
        ("Rulebook version", rb.version),
        ("Generator", f"relationship-addin {__version__}"),
    ):
        wb.custom_doc_props.append(StringProperty(name=name, value=value))
    wb.calculation.fullCalcOnLoad = True


def _print_setup(
    ws: Worksheet,
    sheet: SheetSpec,
    *,
    header_row: int,
    last_col: int,
    last_row: int,
) -> None:
    ws.page_setup.orientation = "landscape" if sheet.landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = False
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.print_area = f"A1:{get_column_letter(last_col)}{max(last_row, header_row)}"
    ws.oddFooter.center.text = "&A - page &P of &N"


def _protect(ws: Worksheet) -> None:
    """Lock formula cells: protect the sheet without a password; inputs stay editable."""
    prot = ws.protection
    prot.sheet = True
    prot.formatColumns = False  # allow: widen columns, expand the helper group
    prot.formatRows = False
    prot.autoFilter = False
    prot.sort = False
    prot.selectLockedCells = False
    prot.selectUnlockedCells = False


# ------------------------------------------------------------------------------ Instructions
def _instructions_sheet(ws: Worksheet, spec: TemplateSpec) -> None:
    ws.title = INSTRUCTIONS
    ws.sheet_properties.tabColor = "7F7F7F"
    ws.column_dimensions["A"].width = 4
    ws.column_dimensions["B"].width = 110
    ws.sheet_view.showGridLines = False
    row = 1
    step = 0
    for para in spec.instructions:
        text = _para_text(para)
        cell = ws.cell(row, 2, text)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if para.kind == "h1":
            cell.font = Font(bold=True, size=16, color="1F3864")
            ws.row_dimensions[row].height = 26
        elif para.kind == "h2":
            cell.font = Font(bold=True, size=12, color="1F3864")
            ws.row_dimensions[row].height = 22
            step = 0
        else:
            if para.kind == "step":
                step += 1
                ws.cell(row, 1, step).alignment = Alignment(horizontal="right", vertical="top")
            if para.kind == "quote":
                cell.font = Font(italic=True, color="404040")
            lines = max(1, math.ceil(len(text) / 115))
            ws.row_dimensions[row].height = 15 * lines + 3
        row += 1
    ws.cell(row + 1, 2, f"Built by relationship-addin {__version__} ({spec.key}).").font = Font(
        italic=True, color="808080"
    )
    sheet = SheetSpec(INSTRUCTIONS, spec.title, landscape=False)
    _print_setup(ws, sheet, header_row=1, last_col=2, last_row=row + 1)
    ws.print_title_rows = None
    _protect(ws)


def _para_text(para: Para) -> str:
    if para.kind == "quote":
        return f"“{para.text}” ({para.source})"
    return para.text


# ------------------------------------------------------------------------------ table sheets
def _table_sheet(
    wb: Workbook, ws: Worksheet, sheet: SheetSpec, layout: Layout, ranges: dict[str, str]
) -> None:
    ws.cell(1, 1, sheet.title).font = Font(bold=True, size=14, color="1F3864")
    ws.cell(2, 1, sheet.intro).font = Font(italic=True, color="404040")
    ws.row_dimensions[1].height = 22
    for i, named in enumerate(sheet.cells):
        _named_cell(wb, ws, sheet, named, 4 + i, ranges)
    last_col = 3 if sheet.cells else 1
    last_row = 3 + len(sheet.cells)
    header_row = sheet.header_row
    if sheet.table is not None:
        t = layout.tables[sheet.table.name]
        _write_table(ws, t, ranges)
        visible = [c for c in sheet.table.columns if not c.helper]
        last_col = max(last_col, len(visible))
        last_row = t.last
    if sheet.cells:  # room for the labels and values above the table
        label_width = max(len(c.label) for c in sheet.cells) + 3
        for letter, width in (("A", label_width), ("B", 13)):
            dim = ws.column_dimensions[letter]
            dim.width = max(dim.width or 0, width)
    for chart in sheet.charts:
        anchor_col = column_index_from_string(re.match(r"[A-Z]+", chart.anchor)[0])
        last_col = max(last_col, anchor_col + math.ceil(chart.width / 1.9))
        anchor_row = int(re.search(r"\d+", chart.anchor)[0])
        last_row = max(last_row, anchor_row + math.ceil(chart.height / 0.5))
        _add_chart(wb, ws, chart, layout)
    ws.freeze_panes = ws.cell(
        header_row + 1 if sheet.table is not None else 4,
        2 if sheet.freeze_first_column and sheet.table is not None else 1,
    )
    _print_setup(ws, sheet, header_row=header_row, last_col=last_col, last_row=last_row)
    _protect(ws)


def _named_cell(
    wb: Workbook,
    ws: Worksheet,
    sheet: SheetSpec,
    named: NamedCell,
    row: int,
    ranges: dict[str, str],
) -> None:
    ws.cell(row, 1, named.label).font = Font(bold=True)
    cell = ws.cell(row, 2)
    value = named.value
    if isinstance(value, str) and value.startswith("="):
        value = fx.render(value, {}, row, ranges)
    cell.value = value
    cell.style = INPUT_STYLE if named.is_input else FORMULA_STYLE
    fmt = named.number_format or {"date": "yyyy-mm-dd", "whole": "0", "percent": "0%"}.get(
        named.kind
    )
    if fmt:
        cell.number_format = fmt
    cell.alignment = Alignment(horizontal="left", vertical="top")
    note = ws.cell(row, 3, named.help)
    note.font = Font(italic=True, color="808080")
    if named.is_input:
        col = Column(named.label[:30], named.kind, help=named.help)
        dv = _validation(col, cell.coordinate, {}, row, ranges)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(cell.coordinate)
    _define(wb, named.name, _absolute(ws.title, cell.coordinate))


def _write_table(ws: Worksheet, t: TableLayout, ranges: dict[str, str]) -> None:
    spec = t.spec
    for header in (r for row in spec.rows for r in row):
        if header not in t.letters:
            raise ValueError(f"table {spec.name}: a row names unknown column {header!r}")
    for i, col in enumerate(spec.columns, 1):
        cell = ws.cell(t.header_row, i, col.header)
        cell.style = HEADER_STYLE
        letter = t.letters[col.header]
        ws.column_dimensions[letter].width = col.width
    ws.row_dimensions[t.header_row].height = 32
    helper_cols = []
    for i, col in enumerate(spec.columns, 1):
        letter = t.letters[col.header]
        if col.helper:
            helper_cols.append(letter)
        proto = ws.cell(t.first, i)
        proto.style = (
            FORMULA_STYLE
            if col.formula is not None
            else (INPUT_STYLE if col.is_input else FIXED_STYLE)
        )
        if col.fmt and not (col.fmt == "@" and col.formula is not None):
            proto.number_format = col.fmt
        if col.wrap:
            proto.alignment = Alignment(wrap_text=True, vertical="top")
        for n in range(spec.capacity):
            r = t.first + n
            cell = ws.cell(r, i)
            if col.formula is not None:
                cell.value = fx.render(col.formula, t.letters, r, ranges)
            else:
                _put(cell, spec.rows[n].get(col.header) if n < len(spec.rows) else None)
            if n:
                cell._style = copy(proto._style)  # same style, without re-resolving it
    table = Table(
        displayName=spec.name,
        ref=f"A{t.header_row}:{get_column_letter(len(spec.columns))}{t.last}",
    )
    table.tableStyleInfo = TableStyleInfo(
        name=spec.style, showRowStripes=False, showColumnStripes=False
    )
    ws.add_table(table)
    if helper_cols:
        ws.column_dimensions.group(helper_cols[0], helper_cols[-1], hidden=True, outline_level=1)
        ws.sheet_properties.outlinePr.summaryRight = False
    for col in spec.columns:
        letter = t.letters[col.header]
        sqref = f"{letter}{t.first}:{letter}{t.last}"
        if col.is_input:
            dv = _validation(col, sqref, t.letters, t.first, ranges)
            if dv is not None:
                ws.add_data_validation(dv)
                dv.add(sqref)
        for condition, look in col.highlights:
            fill, font = _LOOKS[look]
            ws.conditional_formatting.add(
                sqref,
                FormulaRule(
                    formula=[fx.render(condition, t.letters, t.first, ranges)],
                    fill=fill,
                    font=font,
                    stopIfTrue=False,
                ),
            )
        if col.databar is not None:
            lo, hi = col.databar
            ws.conditional_formatting.add(
                sqref,
                DataBarRule(
                    start_type="num",
                    start_value=lo,
                    end_type="num",
                    end_value=hi,
                    color="8EA9DB",
                ),
            )
    if "Notes" in t.letters:
        inputs = [t.letters[c.header] for c in spec.columns if c.is_input]
        notes = t.letters["Notes"]
        fill, font = _LOOKS["muted"]
        sqref = " ".join(f"{c}{t.first}:{c}{t.last}" for c in inputs)
        ws.conditional_formatting.add(
            sqref,
            FormulaRule(
                formula=[f'LEFT(${notes}{t.first},{len(SAMPLE_PREFIX)})="{SAMPLE_PREFIX}"'],
                font=font,
            ),
        )


def _put(cell: Any, value: Any) -> None:
    """Write a value as data: text that looks like a formula stays text."""
    if value is None:
        return
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"


def _validation(
    col: Column, sqref: str, letters: dict[str, str], row: int, ranges: dict[str, str]
) -> DataValidation | None:
    title = col.header[:32]
    prompt = (col.help or col.header)[:255]
    common: dict[str, Any] = {
        "allow_blank": True,
        "showInputMessage": True,
        "promptTitle": title,
        "prompt": prompt,
        "showErrorMessage": True,
        "errorTitle": title,
        "errorStyle": "stop" if col.strict else "warning",
    }
    if col.custom_rule:
        formula = fx.render(col.custom_rule, letters, row, ranges).lstrip("=")
        return DataValidation(
            type="custom",
            formula1=formula,
            error=(col.error or "This value is not allowed here.")[:255],
            **common,
        )
    if col.kind == "choice":
        if col.choices_from:
            source = fx.render(col.choices_from, letters, row, ranges)
            listed = "the list"
        else:
            if any("," in c for c in col.choices):
                raise ValueError(f"column {col.header!r}: a choice holds a comma")
            source = '"' + ",".join(col.choices) + '"'
            if len(source) > 255:
                raise ValueError(f"column {col.header!r}: the choices exceed 255 characters")
            listed = ", ".join(col.choices)
        error = col.error or (
            f"Pick one of: {listed}."
            if col.strict
            else f"This value is not one of: {listed}. Keep it anyway?"
        )
        return DataValidation(type="list", formula1=source, error=error[:255], **common)
    if col.kind in ("number", "whole", "percent"):
        lo = col.minimum if col.kind != "percent" else 0
        hi = col.maximum if col.kind != "percent" else 1
        kind = "whole" if col.kind == "whole" else "decimal"
        word = "a whole number" if kind == "whole" else "a number"
        if hi is not None:
            rule = {"operator": "between", "formula1": _num(lo or 0), "formula2": _num(hi)}
            error = f"Enter {word} from {_num(lo or 0)} to {_num(hi)}, or leave it blank."
        else:
            rule = {"operator": "greaterThanOrEqual", "formula1": _num(lo or 0)}
            error = f"Enter {word} of {_num(lo or 0)} or more, or leave it blank."
        return DataValidation(type=kind, error=(col.error or error)[:255], **rule, **common)
    if col.kind == "date":
        return DataValidation(
            type="date",
            operator="between",
            formula1="DATE(1900,1,1)",
            formula2="DATE(9999,12,31)",
            error=(col.error or "Enter a date (for example 2024-03-15), or leave it blank.")[:255],
            **common,
        )
    if col.kind == "text":
        return DataValidation(type=None, **common)
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _add_chart(wb: Workbook, ws: Worksheet, spec: ChartSpec, layout: Layout) -> None:
    t = layout.tables[spec.table]
    src = wb[t.sheet]
    last = t.first + (spec.rows or t.spec.capacity) - 1
    if spec.kind == "line":
        chart: Any = LineChart()
    else:
        chart = BarChart()
        chart.type = "bar" if spec.kind == "bar" else "col"
        chart.gapWidth = 60
    chart.title = spec.title
    chart.width, chart.height = spec.width, spec.height
    for header in spec.series:
        col = column_index_from_string(t.letters[header])
        chart.add_data(
            Reference(src, min_col=col, min_row=t.header_row, max_row=last), titles_from_data=True
        )
    cat = column_index_from_string(t.letters[spec.categories])
    chart.set_categories(Reference(src, min_col=cat, min_row=t.first, max_row=last))
    chart.y_axis.title = spec.y_title or None
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    if spec.percent:
        chart.y_axis.numFmt = "0%"
        chart.y_axis.number_format = "0%"
    if spec.kind == "bar":
        chart.x_axis.scaling.orientation = "maxMin"
        chart.legend = None
    ws.add_chart(chart, spec.anchor)


# ------------------------------------------------------------------------------ Scoring sheet
def _scoring_sheet(wb: Workbook, ws: Worksheet, sheet: SheetSpec, rb: Rulebook) -> None:
    rules = fx.rules_ref(rb)
    L = fx.scoring_layout(rb)
    ws.cell(1, 1, sheet.title).font = Font(bold=True, size=14, color="1F3864")
    ws.cell(2, 1, sheet.intro).font = Font(italic=True, color="404040")
    ws.cell(L.settings_row - 1, 1, "Setting").style = HEADER_STYLE
    ws.cell(L.settings_row - 1, 2, "Value").style = HEADER_STYLE
    for name, setting in fx.SETTING_NAMES.items():
        r = L.setting_row(name)
        ws.cell(r, 1, setting).style = FIXED_STYLE
        cell = ws.cell(r, 2, fx.scoring_setting_formula(setting, rules))
        cell.style = FORMULA_STYLE
        ws.cell(r, 3, f"named {name}").font = Font(italic=True, color="808080")
        _define(wb, name, _absolute(ws.title, cell.coordinate))
    ws.cell(L.check_row, 1, "Rules check").font = Font(bold=True)
    check = ws.cell(L.check_row, 2, "=RulesCheck")
    check.style = FORMULA_STYLE

    def header(row: int, titles: list[str]) -> None:
        for i, title in enumerate(titles, 1):
            ws.cell(row, i, title).style = HEADER_STYLE

    signal_titles = [
        "Signal",
        "Field",
        "Test",
        "Rules row",
        "Value",
        "Threshold",
        "Weight",
        "Suppressed by",
        "Check",
    ]
    header(L.signal_header_row, signal_titles + [s.id for s in rb.signals])
    for k, s in enumerate(rb.signals):
        r = L.first_signal_row + k
        for col, value in ((L.ID, s.id), (L.FIELD, s.field), (L.TEST, s.test)):
            ws[f"{col}{r}"] = value
            ws[f"{col}{r}"].style = FIXED_STYLE
        for col, formula in fx.scoring_row_formulas("signal", r, rules, L).items():
            ws[f"{col}{r}"] = formula
            ws[f"{col}{r}"].style = FORMULA_STYLE
        for j in range(len(rb.signals)):
            col = L.matrix_col(j)
            ws[f"{col}{r}"] = fx.link_formula(r, col, L)
            ws[f"{col}{r}"].style = FORMULA_STYLE
    header(
        L.buyer_header_row,
        [
            "Buyer rule",
            "Field",
            "Test",
            "Rules row",
            "Value",
            "Threshold",
            "Buyer type",
            "",
            "Check",
        ],
    )
    for k, b in enumerate(rb.buyer_rules):
        r = L.first_buyer_row + k
        for col, value in ((L.ID, b.id), (L.FIELD, b.field), (L.TEST, b.test)):
            ws[f"{col}{r}"] = value
            ws[f"{col}{r}"].style = FIXED_STYLE
        for col, formula in fx.scoring_row_formulas("buyer_rule", r, rules, L).items():
            ws[f"{col}{r}"] = formula
            ws[f"{col}{r}"].style = FORMULA_STYLE
    for col, width in zip("ABCDEFGHI", (26, 20, 12, 9, 12, 9, 9, 22, 14), strict=True):
        ws.column_dimensions[col].width = width
    for j in range(len(rb.signals)):
        ws.column_dimensions[L.matrix_col(j)].width = 5
    ws.row_dimensions[L.signal_header_row].height = 90
    for j in range(len(rb.signals)):
        ws.cell(L.signal_header_row, L.MATRIX_FIRST_COL + j).alignment = Alignment(
            text_rotation=90, vertical="bottom"
        )
    ws.freeze_panes = ws.cell(L.first_signal_row, 2)
    _print_setup(
        ws,
        sheet,
        header_row=L.signal_header_row,
        last_col=L.MATRIX_FIRST_COL + len(rb.signals) - 1,
        last_row=L.last_buyer_row,
    )
    _protect(ws)


# ------------------------------------------------------------------------------ builders
def _rows_to_records(rb: Rulebook, rows: Any) -> tuple[dict[str, Any], ...]:
    """Rows keyed by any header the rulebook maps (or field names) -> keyed by template header."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    mapping = map_columns(list(frame.columns), rb)
    if not set(mapping.fields) - {"account"}:
        raise InputError(
            "none of the rows' columns is a relationship field "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    targets = {col: input_header(rb, f) for f, col in mapping.fields.items()}
    if "Notes" in frame.columns and "Notes" not in targets:
        targets["Notes"] = "Notes"
    records = []
    for values in frame[list(targets)].itertuples(index=False, name=None):
        records.append({targets[c]: _cell_value(v) for c, v in zip(targets, values, strict=True)})
    return tuple(records)


def _cell_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str | dt.date):
        value = value.item()  # numpy scalar -> Python
    if isinstance(value, str) and value == "":
        return None
    return value


def build_classifier(
    rulebook: Rulebook | str | Mapping[str, Any] | None = None,
    *,
    rows: pd.DataFrame | Iterable[Mapping[str, Any]] | None = None,
    as_of: dt.date | None = None,
    capacity: int | None = None,
) -> Workbook:
    """The account classifier.

    ``rows`` (a DataFrame or dicts, with any headers the rulebook maps) replace the sample
    rows; ``as_of`` fixes the As of cell (default =TODAY()); ``capacity`` is the number of
    table rows (default 200, or the number of rows given).
    """
    rb = load_rulebook(rulebook)
    records = _rows_to_records(rb, rows) if rows is not None else None
    spec = classifier_spec(rb, rows=records, capacity=capacity, as_of=as_of)
    return build_template(spec, rb)


def build_strategy_plan(
    rulebook: Rulebook | str | Mapping[str, Any] | None = None, *, as_of: dt.date | None = None
) -> Workbook:
    """The client-centric strategy plan with its KPI dashboard."""
    rb = load_rulebook(rulebook)
    return build_template(strategy_plan_spec(rb, as_of=as_of), rb)


def build_conversion_tracker(
    rulebook: Rulebook | str | Mapping[str, Any] | None = None, *, as_of: dt.date | None = None
) -> Workbook:
    """The customer-to-client conversion tracker with its funnel summary."""
    rb = load_rulebook(rulebook)
    return build_template(conversion_tracker_spec(rb, as_of=as_of), rb)


def template_specs(rulebook: Rulebook | None = None) -> dict[str, TemplateSpec]:
    """The three templates' specs, by file stem."""
    rb = load_rulebook(rulebook)
    specs = (classifier_spec(rb), strategy_plan_spec(rb), conversion_tracker_spec(rb))
    return {s.key: s for s in specs}


BUILDERS = {
    "account-classifier": build_classifier,
    "client-strategy-plan": build_strategy_plan,
    "conversion-tracker": build_conversion_tracker,
}
ADDIN_HEADERS = (fx.TYPE_ADDIN, fx.SCORE_ADDIN, fx.TIPS_ADDIN)
__all__ = [
    "ADDIN_HEADERS",
    "BUILDERS",
    "CLASSIFIER_TABLE",
    "FORMULA_STYLE",
    "INPUT_STYLE",
    "build_classifier",
    "build_conversion_tracker",
    "build_strategy_plan",
    "build_template",
    "template_specs",
]
