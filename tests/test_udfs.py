"""The Excel functions called directly, with cells shaped as the classic add-in sends them.

Office.js dispatch through xlwings itself is in test_udfs_officejs.py.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import logging
import sys
import types

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relationships import engine
from relationships.rulebook import SHEET_COLUMNS, default_rulebook, rulebook_from_rows
from udfs import convert, functions

PER_ROW = {
    "relationship_type": functions.RELATIONSHIP_TYPE,
    "client_score": functions.CLIENT_SCORE,
    "reasons": functions.RELATIONSHIP_REASONS,
    "conversion_tips": functions.CONVERSION_TIPS,
    "buyer_type": functions.BUYER_TYPE,
}
LABELS = ("expected_type", "expected_buyer_type", "seed")
HEADER = ["Account", "Industry", "Service type", "Billing", "Tenure (months)", "Customer since"]
LAW = ["Hartley LLP", "Law firm", "Tax advice", "Monthly retainer", 48.0, None]
SHOP = ["Jo", "Shoe store", "Sneakers", "Card payment", 2.0, None]
NA_COM = -2146826246  # #N/A as the classic add-in (COM) delivers it
NA_OFFICE = {"type": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}


def one(result: list[list]):
    """The value of a one-cell result (every function returns a 2D list, as Excel wants)."""
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    return result[0][0]


@pytest.fixture(autouse=True)
def fresh_caches():
    functions.clear_caches()
    yield
    functions.clear_caches()


def typed(value: str):
    """A CSV cell as Excel holds it: empty, a number, or text."""
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


@pytest.fixture(scope="module")
def table(labeled: pd.DataFrame) -> tuple[list[str], list[list]]:
    inputs = labeled.drop(columns=list(LABELS))
    return list(inputs.columns), [[typed(v) for v in row] for row in inputs.to_numpy().tolist()]


# ------------------------------------------------------------------------------ one vs many
@pytest.mark.parametrize("path", ["classify_rows", "classify"])
def test_single_and_many_rows_agree_on_every_labeled_row(table, path, monkeypatch):
    header, rows = table
    limit = 0 if path == "classify" else len(rows)  # which path the many-row call takes
    monkeypatch.setattr(functions, "ROWS_PATH_LIMIT", limit)
    many = {name: f(rows, header) for name, f in PER_ROW.items()}
    table_out = functions.CLASSIFY_TABLE([header, *rows])
    assert table_out[0] == list(engine.RESULT_COLUMNS)
    for column in many.values():
        assert len(column) == len(rows)
        assert all(isinstance(cell, list) and len(cell) == 1 for cell in column)
    for i, row in enumerate(rows):
        for name, f in PER_ROW.items():
            single = one(f(row, header))
            assert single == many[name][i][0], (name, i, rows[i][0])
            assert single == table_out[i + 1][engine.RESULT_COLUMNS.index(name)]


def test_results_are_the_engine_results(table):
    header, rows = table
    expected = engine.classify(pd.DataFrame(rows, columns=header, dtype=object))
    got = functions.CLASSIFY_TABLE([header, *rows])[1:]
    assert got == [list(r) for r in expected.itertuples(index=False)]


def test_numbers_stored_as_text_read_like_numbers(table):
    header, rows = table
    as_text = [
        ["" if v is None else (f"{v:g}" if isinstance(v, float) else v) for v in r] for r in rows
    ]
    assert functions.CLASSIFY_TABLE([header, *as_text]) == functions.CLASSIFY_TABLE([header, *rows])


# ------------------------------------------------------------------------------ shapes
def test_one_row_gives_one_cell_in_every_shape():
    expected = functions.RELATIONSHIP_TYPE(LAW, HEADER)
    assert expected == [["Client"]]
    assert functions.RELATIONSHIP_TYPE([LAW], [HEADER]) == expected
    assert functions.RELATIONSHIP_TYPE(((*LAW,),), ((*HEADER,),)) == expected  # COM tuples
    assert functions.RELATIONSHIP_TYPE([HEADER, LAW]) == expected  # header row first
    assert functions.CLIENT_SCORE(LAW, HEADER) == [[100]]
    assert isinstance(one(functions.CLIENT_SCORE(SHOP, HEADER)), int)


def test_many_rows_give_a_column_with_blank_rows_blank():
    blank = [None, "", "  ", None, None, None]
    got = functions.RELATIONSHIP_TYPE([LAW, blank, SHOP], HEADER)
    assert got == [["Client"], [""], ["Customer"]]
    assert functions.CLIENT_SCORE([blank, blank], HEADER) == [[""], [""]]
    assert functions.RELATIONSHIP_TYPE(blank, HEADER) == [[""]]
    assert functions.CLASSIFY_TABLE([HEADER, blank])[1] == [""] * len(engine.RESULT_COLUMNS)


def test_a_header_row_repeated_in_rows_gets_a_blank_result():
    assert functions.RELATIONSHIP_TYPE([HEADER, LAW, SHOP], HEADER) == [
        [""],
        ["Client"],
        ["Customer"],
    ]


def test_a_single_column_range_works():
    assert functions.RELATIONSHIP_TYPE([["Law firm"], ["Bakery"]], ["Industry"]) == [
        ["Client"],
        ["Customer"],
    ]


def test_tips_honour_max_tips():
    three = one(functions.CONVERSION_TIPS(SHOP, HEADER))
    best = one(functions.CONVERSION_TIPS(SHOP, HEADER, 1.0))
    assert three.count(";") == 2
    assert ";" not in best and three.startswith(best)
    assert one(functions.CONVERSION_TIPS(SHOP, HEADER, "0")) == ""
    assert one(functions.CONVERSION_TIPS(SHOP, HEADER, None)) == three


# ------------------------------------------------------------------------------ Excel values
@pytest.mark.parametrize("error", [NA_COM, NA_OFFICE, "#N/A"])
def test_error_cells_are_unreadable_values_with_a_warning(error):
    row = ((*LAW[:4], error, None),)  # a COM-style row: error numbers come in tuples
    assert functions.CLIENT_SCORE(row, HEADER) == functions.CLIENT_SCORE(
        [*LAW[:4], None, None], HEADER
    )
    warning = functions.CLASSIFY_TABLE((tuple(HEADER), *row))[1][-1]
    assert "'#N/A' is the Excel error #N/A" in warning
    assert "Tenure (months)" in warning


def test_office_js_error_without_text_and_other_data_types():
    assert convert.cell({"type": "Error", "errorType": "Div0"}) == "#DIV/0!"
    assert convert.cell({"type": "Error"}) == "#VALUE!"
    assert convert.cell({"type": "FormattedNumber", "basicValue": 36, "numberFormat": "0"}) == 36
    assert convert.cell(
        {"type": "Double", "basicValue": {"type": "Error", "errorType": "Num"}}
    ) == ("#NUM!")


def test_dates_as_serials_datetimes_or_text_give_the_same_tenure():
    utc = dt.datetime(2021, 3, 15, tzinfo=dt.UTC)  # classic: pywintypes, tagged UTC
    since = [dt.datetime(2021, 3, 15), utc, 44270.0, 44270, "2021-03-15"]
    rows = [[*SHOP[:4], None, s] for s in since]
    results = functions.CLASSIFY_TABLE([HEADER, *rows])[1:]
    assert all(r == results[0] for r in results), results
    assert results[0][-1] == ""  # no warning


def test_empty_cells_as_every_runtime_sends_them(monkeypatch):
    class FakeJsNull:  # pyodide's JsNull stand-in (xlwings Lite)
        pass

    monkeypatch.setattr(convert, "JsNull", FakeJsNull)
    empties = [None, "", FakeJsNull()]
    expected = functions.CLASSIFY_TABLE([HEADER, [*SHOP[:4], None, None]])
    for empty in empties:
        assert functions.CLASSIFY_TABLE([HEADER, [*SHOP[:4], empty, empty]]) == expected


def test_numeric_header_cells_read_as_text():
    assert convert.label(2024.0) == "2024"
    assert convert.label(None) == ""
    assert convert.label(" Industry ") == "Industry"


# ------------------------------------------------------------------------------ messages
NO_COLUMN = (
    "No column recognized as a relationship field: use headers such as Industry, "
    "Service type, Billing"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["x", "y"], ["foo", "bar"]), NO_COLUMN),
        ((["x", "y"], ["foo", "bar"]), "(check the headers range)"),
        (([["foo", "bar"], ["x", "y"]],), "(the first row of rows is read as the header row"),
        (([LAW], [HEADER[:-1]]), "The rows range has 6 columns but headers has 5: use ranges of"),
        (([HEADER],), "The rows range holds only a header row: add data rows below it"),
        ((None,), "The rows range is empty"),
        ((None, HEADER), "The rows range is empty"),
        ((LAW, [HEADER, HEADER]), "Headers must be one row, e.g. A$1:M$1"),
        ((LAW, HEADER, [["section"], ["x"]]), "Rules range: no header row with the columns"),
    ],
)
def test_unusable_input_gives_one_readable_line(args, message):
    for name, f in PER_ROW.items():
        got = (
            f(*args) if name != "conversion_tips" or len(args) < 3 else f(*args[:2], None, args[2])
        )
        got = one(got)
        assert isinstance(got, str), name
        assert message in got, (name, got)
        assert "\n" not in got and "Traceback" not in got


@pytest.mark.parametrize("bad", ["two", -1, 1.5, True, NA_OFFICE])
def test_bad_max_tips(bad):
    got = one(functions.CONVERSION_TIPS(SHOP, HEADER, bad))
    assert got.startswith("The max_tips argument must be a whole number, 0 or more (got ")


def test_an_unexpected_error_is_a_short_message_and_is_logged(monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(functions.engine, "classify_rows", boom)
    with caplog.at_level(logging.ERROR, logger="udfs.functions"):
        got = functions.RELATIONSHIP_TYPE(LAW, HEADER)
    assert got == [["Unexpected error (RuntimeError: boom); please report it"]]
    assert "Traceback" in caplog.text


@pytest.mark.parametrize("junk", [None, [], [[]], {"x": 1}, object(), [[object()]], 3.5, "text"])
def test_no_function_raises_on_junk(junk):
    for f in (*PER_ROW.values(), functions.CLASSIFY_TABLE, functions.BUSINESS_MODEL):
        got = f(junk)
        assert isinstance(got, list) and got and all(isinstance(r, list) for r in got)
    for f in PER_ROW.values():
        assert isinstance(one(f(LAW, HEADER, junk if junk is not None else [[1]])), str | int)


# ------------------------------------------------------------------------------ rules
def test_the_exported_rules_table_round_trips():
    table = functions.RELATIONSHIP_RULES()
    assert table[0] == list(SHEET_COLUMNS)
    assert all(v is not None for row in table for v in row)
    assert rulebook_from_rows(table) == default_rulebook()
    signals = [row for row in table if row[0] == "signal"]
    assert signals and all(row[-1] for row in signals), "every signal cites its source"


def as_office_js(table: list[list]) -> list[list]:
    """Cells as Office.js sends them: whole numbers as int, blanks as ""."""
    return [
        ["" if v == "" else int(v) if isinstance(v, float) and v.is_integer() else v for v in r]
        for r in table
    ]


def test_a_rules_range_is_used_and_parsed_once(monkeypatch):
    table = functions.RELATIONSHIP_RULES()
    calls = []
    real = functions.rulebook_from_rows

    def counting(rows, origin):
        calls.append(origin)
        return real(rows, origin)

    monkeypatch.setattr(functions, "rulebook_from_rows", counting)
    default = functions.CLASSIFY_TABLE([HEADER, LAW, SHOP])
    for rules in (table, as_office_js(table), table):
        assert functions.CLASSIFY_TABLE([HEADER, LAW, SHOP], rules) == default
    assert len(calls) == 1  # 40 == 40.0: the Office.js-shaped copy is the same content

    lenient = [list(r) for r in table]
    for r in lenient:
        if r[:2] == ["setting", "threshold"]:
            r[4] = 0
    assert functions.RELATIONSHIP_TYPE(SHOP, HEADER, lenient) == [["Client"]]
    assert functions.RELATIONSHIP_TYPE(SHOP, HEADER) == [["Customer"]]
    assert len(calls) == 2


def test_a_bad_rules_range_is_reported_once_per_content(monkeypatch):
    table = [list(r) for r in functions.RELATIONSHIP_RULES()]
    for r in table:
        if r[:2] == ["setting", "threshold"]:
            r[4] = "high"
    calls = []
    real = functions.rulebook_from_rows
    monkeypatch.setattr(
        functions, "rulebook_from_rows", lambda rows, origin: calls.append(1) or real(rows, origin)
    )
    for _ in range(3):
        got = one(functions.RELATIONSHIP_TYPE(LAW, HEADER, table))
        assert got.startswith("Rules range row ")
        assert "'value' must be a number, got 'high'" in got
    assert len(calls) == 1


def test_the_rules_cache_is_bounded():
    table = functions.RELATIONSHIP_RULES()
    for n in range(functions.RULES_CACHE_SIZE + 3):
        variant = [*table, ["ignore_word", "", "", "", f"extra{n}", "", "", "", "test"]]
        assert functions.RELATIONSHIP_TYPE(LAW, HEADER, variant) == [["Client"]]
    assert len(functions._rules_cache) == functions.RULES_CACHE_SIZE


def test_neighbouring_formulas_of_one_row_classify_it_once(monkeypatch):
    calls = []
    real = engine.classify_rows
    monkeypatch.setattr(
        functions.engine,
        "classify_rows",
        lambda *a, **k: calls.append(1) or real(*a, **k),
    )
    for f in PER_ROW.values():
        f(LAW, HEADER)
    assert len(calls) == 1
    functions.CONVERSION_TIPS(LAW, HEADER, 1)  # another max_tips: another result
    assert len(calls) == 2
    functions.clear_caches()
    functions.RELATIONSHIP_TYPE(LAW, HEADER)
    assert len(calls) == 3


# ------------------------------------------------------------------------------ business model
def test_business_model_shapes():
    assert functions.BUSINESS_MODEL("Law firm") == [["Client-based"]]
    assert functions.BUSINESS_MODEL([["Law firm"], ["SaaS"], [""], ["Law firm software"]]) == [
        ["Client-based"],
        ["Customer-based"],
        [""],
        ["Hybrid"],
    ]
    assert functions.BUSINESS_MODEL(["Bakery", None, NA_OFFICE, "Pet rocks"]) == [
        ["Customer-based", "", "Unknown", "Unknown"]
    ]
    assert functions.BUSINESS_MODEL(None) == [[""]]


def test_business_model_follows_a_rules_range():
    table = [list(r) for r in functions.RELATIONSHIP_RULES()]
    table.append(["keyword", "business_client_based", "business_type", "", "pet rocks"])
    assert functions.BUSINESS_MODEL("Pet rocks") == [["Unknown"]]
    assert functions.BUSINESS_MODEL("Pet rocks", table) == [["Client-based"]]


# ------------------------------------------------------------------------------ property
CELLS = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "Law firm", "SaaS", "Tax advice", "Shoes", "Retainer", "one-time", "#N/A"]
    ),
    st.floats(min_value=-5, max_value=500, allow_nan=False),
    st.integers(min_value=0, max_value=60000),
    st.booleans(),
    st.just(NA_OFFICE),
    st.just(NA_COM),
    st.just(dt.datetime(2020, 5, 1)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELLS, min_size=6, max_size=6), min_size=1, max_size=8))
def test_any_cells_give_one_result_per_row_same_as_single_calls(rows):
    functions.clear_caches()
    saved = functions.ROWS_PATH_LIMIT
    try:
        functions.ROWS_PATH_LIMIT = 0  # many rows through classify (pandas), only the column
        in_pandas = {name: f(rows, HEADER) for name, f in PER_ROW.items()}
    finally:
        functions.ROWS_PATH_LIMIT = saved
    many = functions.RELATIONSHIP_TYPE(rows, HEADER)
    assert many == in_pandas["relationship_type"]
    column = [cell[0] for cell in many]
    assert len(many) == len(rows) and all(len(cell) == 1 for cell in many)
    for i, (row, got) in enumerate(zip(rows, column, strict=True)):
        assert got in ("Client", "Customer", "")
        assert one(functions.RELATIONSHIP_TYPE(row, HEADER)) == got
        assert (got == "") == convert.blank_row(convert.table(row)[0])
        for name, f in PER_ROW.items():
            assert in_pandas[name][i] == f(row, HEADER)[0], (name, row)


# ------------------------------------------------------------------------------ metadata
@pytest.fixture(scope="module")
def classic_module():
    """udfs/functions.py decorated by the classic (Windows) xlwings decorators.

    xlwings.udfs needs pywin32 only at call time; stub modules let it import here.
    """
    stubs = {}
    for name in ("pythoncom", "pywintypes", "win32com", "win32com.client"):
        stubs[name] = types.ModuleType(name)
    stubs["pythoncom"].CoInitialize = lambda: None
    stubs["win32com.client"].Dispatch = object
    stubs["win32com"].client = stubs["win32com.client"]
    saved = {name: sys.modules.get(name) for name in (*stubs, "xlwings.udfs")}
    sys.modules.update(stubs)
    sys.modules.pop("xlwings.udfs", None)
    try:
        import xlwings as xw
        import xlwings.udfs as classic

        mp = pytest.MonkeyPatch()
        mp.setattr(xw, "func", classic.xlfunc, raising=False)
        mp.setattr(xw, "arg", classic.xlarg, raising=False)
        mp.setattr(xw, "ret", classic.xlret, raising=False)
        spec = importlib.util.spec_from_file_location("udfs_functions_classic", functions.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        mp.undo()
        yield module, classic
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


EXCEL_FUNCTIONS = {
    "RELATIONSHIP_TYPE": ["rows", "headers", "rules"],
    "CLIENT_SCORE": ["rows", "headers", "rules"],
    "RELATIONSHIP_REASONS": ["rows", "headers", "rules"],
    "CONVERSION_TIPS": ["rows", "headers", "max_tips", "rules"],
    "BUYER_TYPE": ["rows", "headers", "rules"],
    "BUSINESS_MODEL": ["business_type", "rules"],
    "CLASSIFY_TABLE": ["table", "rules"],
    "RELATIONSHIP_RULES": [],
}


def test_classic_metadata(classic_module):
    module, _ = classic_module
    found = {name for name in dir(module) if hasattr(getattr(module, name), "__xlfunc__")}
    assert found == set(EXCEL_FUNCTIONS)
    for name, arg_names in EXCEL_FUNCTIONS.items():
        info = getattr(module, name).__xlfunc__
        assert info["category"] == "Relationships"
        doc = info["ret"]["doc"]
        assert "\n" not in doc and 0 < len(doc) < 255, name
        assert [a["name"] for a in info["args"]] == arg_names
        for a in info["args"]:
            assert not a["doc"].startswith("Positional argument"), (name, a["name"])
            assert len(a["doc"]) < 255
            assert ("optional" in a) == (a["pos"] > 0), (name, a["name"])
            assert a["options"].get("convert") == "raw", "no per-cell cleaning by xlwings"
        assert info["ret"]["options"].get("convert") == "raw", "a 2D list, taken as is"


def test_classic_vba_wrappers(classic_module):
    module, classic = classic_module
    book = types.SimpleNamespace(Name="Accounts.xlsm")
    out = io.StringIO()
    classic.generate_vba_wrapper("udfs.functions", module, out, book)
    vba = out.getvalue()
    assert "Function RELATIONSHIP_TYPE(rows, Optional headers, Optional rules)" in vba
    assert (
        "Function CONVERSION_TIPS(rows, Optional headers, Optional max_tips, Optional rules)" in vba
    )
    assert "Function RELATIONSHIP_RULES()" in vba
