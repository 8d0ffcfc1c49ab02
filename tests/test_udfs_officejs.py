"""The Excel functions as Office.js custom functions, through xlwings' own dispatch.

xlwings Server and xlwings Lite call ``xlwings.server.custom_functions_call(data, module)``
with the arguments exactly as Excel hands them to the add-in (each one a 2D list, ``null``
for an omitted optional argument) and register the functions from
``custom_functions_meta(module)``. Both run here on the unchanged udfs/functions.py.

``import xlwings`` picks its decorators once, from XLWINGS_ON_SERVER; another test may have
imported xlwings first, so the fixture loads a fresh copy of the module with the server
decorators and engines in place, as ``import xlwings`` does on a server. The noncommercial
license key is for these tests only.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging

import pytest

from relationships import engine
from udfs import functions

HEADER = ["Account", "Industry", "Service type", "Billing", "Tenure (months)", "Customer since"]
LAW = ["Hartley LLP", "Law firm", "Tax advice", "Monthly retainer", 48, ""]
SHOP = ["Jo", "Shoe store", "Sneakers", "Card payment", 2, ""]
NA = {"type": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}
LABELS = ("expected_type", "expected_buyer_type", "seed")


@pytest.fixture(scope="module")
def server():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XLWINGS_ON_SERVER", "true")
        mp.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
        import xlwings as xw
        import xlwings.server as server
        from xlwings.main import Engine

        for name in ("func", "arg", "ret"):
            mp.setattr(xw, name, getattr(server, name), raising=False)
        if "officejs" not in xw.engines.engines_by_name:
            from xlwings.pro import _xlofficejs, _xlremote

            added = [Engine(impl=_xlremote.engine), Engine(impl=_xlofficejs.engine)]
            mp.setattr(xw.engines, "engines", [*xw.engines.engines, *added])
            mp.setattr(
                xw.engines,
                "engines_by_name",
                {**xw.engines.engines_by_name, **{e.name: e for e in added}},
            )
        spec = importlib.util.spec_from_file_location("udfs_functions_officejs", functions.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield server, module, xw.__version__


def call(server, func_name: str, *args, address: str = "Sheet1!N2"):
    """One custom-function call as the Office.js add-in posts it."""
    xlserver, module, version = server
    data = {
        "func_name": func_name,
        "args": list(args),
        "version": version,
        "client": "Office.js",
        "caller_address": f"Office.js[Accounts.xlsx]{address}",
        "culture_info_name": "en-US",
        "date_format": "M/d/yyyy",
        "runtime": "1.4",
    }
    return asyncio.run(xlserver.custom_functions_call(data, module))


def rows(*r):
    return [list(x) for x in r]


# ------------------------------------------------------------------------------ metadata
EXPECTED = {
    "RELATIONSHIP_TYPE": (["rows", "headers", "rules"], 1),
    "CLIENT_SCORE": (["rows", "headers", "rules"], 1),
    "RELATIONSHIP_REASONS": (["rows", "headers", "rules"], 1),
    "CONVERSION_TIPS": (["rows", "headers", "max_tips", "rules"], 1),
    "BUYER_TYPE": (["rows", "headers", "rules"], 1),
    "BUSINESS_MODEL": (["business_type", "rules"], 1),
    "CLASSIFY_TABLE": (["table", "rules"], 1),
    "RELATIONSHIP_RULES": ([], 0),
}


def test_metadata_describes_every_function_and_argument(server):
    xlserver, module, _ = server
    meta = xlserver.custom_functions_meta(module)
    functions_meta = {f["id"]: f for f in meta["functions"]}
    assert set(functions_meta) == set(EXPECTED)
    assert meta["allowErrorForDataTypeAny"] is True  # error cells reach the functions
    for fid, (params, required) in EXPECTED.items():
        f = functions_meta[fid]
        assert f["name"] == fid, "no namespace: the same names as the classic add-in"
        assert f["description"] and "\n" not in f["description"]
        assert len(f["description"]) < 255
        assert [p["name"] for p in f["parameters"]] == params
        for i, p in enumerate(f["parameters"]):
            assert p["description"] and not p["description"].startswith("Positional argument")
            assert p.get("optional", False) == (i >= required), (fid, p["name"])
            assert (p["dimensionality"], p["type"]) == ("matrix", "any")
        assert f["result"] == {"dimensionality": "matrix", "type": "any"}
    # one category: the classic decorators carry it (test_udfs.py); Office.js has none, and
    # every function shares the one (empty) namespace
    assert {f["name"].rpartition(".")[0] for f in meta["functions"]} == {""}


def test_dispatch_is_by_the_python_name_which_is_the_excel_name(server):
    assert call(server, "RELATIONSHIP_TYPE", [LAW], [HEADER]) == [["Client"]]
    with pytest.raises(AttributeError):
        call(server, "relationship_type", [LAW], [HEADER])


# ------------------------------------------------------------------------------ shapes
def test_one_row_filled_down(server):
    assert call(server, "RELATIONSHIP_TYPE", [LAW], [HEADER], None) == [["Client"]]
    assert call(server, "RELATIONSHIP_TYPE", [SHOP], [HEADER]) == [["Customer"]]
    assert call(server, "CLIENT_SCORE", [LAW], [HEADER], None) == [[100]]
    assert call(server, "BUYER_TYPE", [SHOP], [HEADER], None) == [["Unknown"]]
    reasons = call(server, "RELATIONSHIP_REASONS", [LAW], [HEADER], None)[0][0]
    assert "Law firm" in reasons


def test_many_rows_spill_one_result_per_row(server):
    blank = ["", "", "", "", "", ""]
    got = call(server, "RELATIONSHIP_TYPE", rows(LAW, blank, SHOP), [HEADER], None)
    assert got == [["Client"], [""], ["Customer"]]
    got = call(server, "RELATIONSHIP_TYPE", rows(HEADER, LAW, SHOP), None, None)
    assert got == [["Client"], ["Customer"]]


def test_max_tips_arrives_as_a_cell(server):
    one = call(server, "CONVERSION_TIPS", [SHOP], [HEADER], [[1]], None)[0][0]
    three = call(server, "CONVERSION_TIPS", [SHOP], [HEADER], None, None)[0][0]
    assert ";" not in one and three.startswith(one) and three.count(";") == 2
    bad = call(server, "CONVERSION_TIPS", [SHOP], [HEADER], [["many"]], None)[0][0]
    assert bad.startswith("The max_tips argument must be a whole number")


def test_classify_table_and_rules_spill(server):
    table = call(server, "CLASSIFY_TABLE", rows(HEADER, LAW, SHOP), None)
    assert table[0] == list(engine.RESULT_COLUMNS)
    assert [r[0] for r in table[1:]] == ["Client", "Customer"]
    rules = call(server, "RELATIONSHIP_RULES")
    assert rules[0][:2] == ["section", "id"]
    assert rules == functions.RELATIONSHIP_RULES()


def test_business_model_one_per_cell(server):
    assert call(server, "BUSINESS_MODEL", [["Law firm"]], None) == [["Client-based"]]
    got = call(server, "BUSINESS_MODEL", [["Law firm"], ["SaaS"], [""], [NA]], None)
    assert got == [["Client-based"], ["Customer-based"], [""], ["Unknown"]]


# ------------------------------------------------------------------------------ cell values
def test_error_cells_arrive_as_error_objects_and_become_warnings(server):
    row = [*LAW[:4], NA, ""]
    table = call(server, "CLASSIFY_TABLE", rows(HEADER, row), None)
    assert "'#N/A' is the Excel error #N/A (column 'Tenure (months)')" in table[1][-1]
    assert call(server, "CLIENT_SCORE", [row], [HEADER]) == call(
        server, "CLIENT_SCORE", [[*LAW[:4], "", ""]], [HEADER]
    )


def test_dates_arrive_as_serial_numbers(server):
    as_serial = call(server, "CLASSIFY_TABLE", rows(HEADER, [*SHOP[:4], "", 44270]), None)
    as_text = call(server, "CLASSIFY_TABLE", rows(HEADER, [*SHOP[:4], "", "2021-03-15"]), None)
    assert as_serial == as_text
    assert as_serial[1][-1] == ""


def test_numbers_stored_as_text(server):
    assert call(server, "CLIENT_SCORE", [[*LAW[:4], "48", ""]], [HEADER]) == call(
        server, "CLIENT_SCORE", [LAW], [HEADER]
    )


def test_rules_range_as_office_js_sends_it(server):
    table = [
        ["" if v == "" else int(v) if isinstance(v, float) and v.is_integer() else v for v in r]
        for r in functions.RELATIONSHIP_RULES()
    ]
    assert call(server, "RELATIONSHIP_TYPE", [SHOP], [HEADER], table) == [["Customer"]]
    for r in table:
        if r[:2] == ["setting", "threshold"]:
            r[4] = 0
    assert call(server, "RELATIONSHIP_TYPE", [SHOP], [HEADER], table) == [["Client"]]


# ------------------------------------------------------------------------------ messages
def test_unusable_input_is_a_message_not_an_error(server):
    got = call(server, "RELATIONSHIP_TYPE", [["x", "y"]], [["foo", "bar"]], None)
    assert got == [
        [
            "No column recognized as a relationship field: use headers such as Industry, "
            "Service type, Billing, Tenure (months) (check the headers range)"
        ]
    ]
    got = call(server, "RELATIONSHIP_TYPE", [LAW], [HEADER], [["not", "rules"]])[0][0]
    assert got.startswith("Rules range: no header row with the columns section, id, field")


def test_an_unexpected_error_is_a_message(server, monkeypatch, caplog):
    _, module, _ = server

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(module.engine, "classify_rows", boom)
    with caplog.at_level(logging.ERROR):
        got = call(
            server, "RELATIONSHIP_TYPE", [["Bob", "Bakery", "Bread", "Cash", 3, ""]], [HEADER]
        )
    assert got == [["Unexpected error (ZeroDivisionError: division by zero); please report it"]]


# ------------------------------------------------------------------------------ labeled rows
def test_labeled_rows_through_the_dispatch_match_direct_calls(server, labeled):
    inputs = labeled.drop(columns=list(LABELS))
    header = list(inputs.columns)
    body = inputs.to_numpy().tolist()  # every cell as typed text, "" when empty
    many = call(server, "RELATIONSHIP_TYPE", body, [header], None)
    assert many == functions.RELATIONSHIP_TYPE(body, header)
    for i, row in enumerate(body):
        assert call(server, "RELATIONSHIP_TYPE", [row], [header], None) == [many[i]]
        assert call(server, "CLIENT_SCORE", [row], [header], None) == functions.CLIENT_SCORE(
            row, header
        )
