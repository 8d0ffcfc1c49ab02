"""classify(): the seeds' distinctions, header synonyms, values as analysts type them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from relationships import classify, classify_detailed, engine
from relationships.engine import RESULT_COLUMNS, business_model, classify_rows
from relationships.errors import InputError
from relationships.rulebook import load_rulebook
from tests.conftest import AS_OF


def one(**cells) -> pd.Series:
    return classify(pd.DataFrame([cells]), as_of=AS_OF).iloc[0]


def test_result_columns_index_and_order_are_kept() -> None:
    frame = pd.DataFrame(
        {"Industry": ["Bank", "Law firm", "Retail"], "Extra": [1, 2, 3]},
        index=pd.Index(["z", "a", "m"], name="key"),
    )
    out = classify(frame)
    assert list(out.columns) == list(RESULT_COLUMNS)
    assert out.index.equals(frame.index)
    assert list(out["relationship_type"]) == ["Customer", "Client", "Customer"]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Tenure (months)", "relationship_months"),
        ("Months as customer", "relationship_months"),
        ("Orders / year", "purchases_per_year"),
        ("ORDERS PER YEAR", "purchases_per_year"),
        ("Industry", "business_type"),
        ("Service type", "offering"),
        ("Billing", "payment_model"),
        ("Contract type", "payment_model"),
        ("  customer_since ", "customer_since"),
        ("Customer since", "customer_since"),
        ("Needs advice?", "advice"),
        ("# of referrals", "referrals"),
        ("Price / value", None),
        ("Notes", None),
    ],
)
def test_header_synonyms(header: str, field: str | None) -> None:
    result = classify_detailed(pd.DataFrame({header: ["x"]}))
    assert result.mapping.describe().get(header) == field


def test_map_override_and_unknown_field() -> None:
    frame = pd.DataFrame({"Kind": ["Law firm"]})
    assert one(Kind="Law firm")["client_score"] == 40
    out = classify(frame, mapping={"Kind": "business_type"})
    assert out["client_score"].iloc[0] == 55
    with pytest.raises(InputError, match="unknown field 'colour'"):
        classify(frame, mapping={"Kind": "colour"})


def test_long_tenure_alone_does_not_make_a_bank_retail_or_subscription_customer_a_client() -> None:
    for business, payment in [("Bank", ""), ("Retail store", ""), ("", "Monthly subscription")]:
        row = one(Industry=business, Billing=payment, **{"Tenure (months)": 240})
        assert row["relationship_type"] == "Customer", row["reasons"]
        assert "despite 240-month relationship" in row["reasons"]


def test_hybrid_customer_based_business_buying_professional_services_is_a_client() -> None:
    row = one(Industry="SaaS", **{"Service type": "Implementation consulting"})
    assert row["relationship_type"] == "Client"
    assert one(Industry="SaaS", **{"Service type": "Seats"})["relationship_type"] == "Customer"
    assert business_model(["SaaS", "Law firm", "Software consultancy", "Florist", None]) == [
        "Customer-based",
        "Client-based",
        "Hybrid",
        "Unknown",
        "Unknown",
    ]


def test_consumer_is_a_buyer_type_not_a_verdict() -> None:
    assert one(**{"Personal use": "yes"})["buyer_type"] == "Consumer"
    assert one(**{"Personal use": "No"})["buyer_type"] == "Business"
    assert one(Account="Smith Holdings Ltd")["buyer_type"] == "Business"
    assert one(Account="Jane Smith")["buyer_type"] == "Unknown"


@pytest.mark.parametrize("yes", ["yes", "Y", "TRUE", True, 1, 1.0, "x", " Yes ", "1"])
def test_yes_in_any_usual_spelling(yes) -> None:
    assert one(Advice=yes)["client_score"] == 55


@pytest.mark.parametrize("no", ["no", "N", "false", False, 0, "0"])
def test_no_in_any_usual_spelling(no) -> None:
    assert one(Advice=no)["client_score"] == 35


def test_true_and_false_stay_apart_from_1_and_0_in_one_column() -> None:
    # True == 1 and hash alike, so a column holding both must not read them as one value
    frame = pd.DataFrame(
        {"Tenure (months)": [1, True, 0, False, 1.0], "Advice": [True, 1, False, 0, 1]},
        dtype=object,
    )
    out = classify(frame)
    assert out["warnings"].tolist() == [
        "",
        "relationship_months: 'TRUE' is TRUE/FALSE, not a number (column 'Tenure (months)')",
        "",
        "relationship_months: 'FALSE' is TRUE/FALSE, not a number (column 'Tenure (months)')",
        "",
    ]
    rows = classify_rows(list(frame.columns), frame.to_numpy().tolist())
    assert [r[1] for r in rows] == out["client_score"].tolist() == [50, 55, 30, 35, 50]


def test_unreadable_values_warn_name_field_and_value_and_count_as_missing() -> None:
    row = one(
        Advice="perhaps",
        **{"Tenure (months)": "a while", "Orders / year": "#N/A", "Contacts per month": -2},
    )
    assert row["client_score"] == 40
    assert (
        row["warnings"]
        == (
            "purchases_per_year: '#N/A' is the Excel error #N/A (column 'Orders / year'); "
            "relationship_months: 'a while' is not a number (column 'Tenure (months)'); "
            "advice: 'perhaps' is not a known advice value (use no, yes) (column 'Advice'); "
            "contacts_per_month: '-2' is negative (column 'Contacts per month')"
        )
        or row["warnings"].count(";") == 3
    )


def test_columns_picks_result_columns_and_names_a_wrong_one() -> None:
    frame = pd.DataFrame({"Industry": ["Law firm", "Retail store"]})
    out = classify(frame, columns=["client_score", "relationship_type"])
    assert list(out.columns) == ["relationship_type", "client_score"]  # RESULT_COLUMNS order
    assert list(classify(frame, columns="buyer_type").columns) == ["buyer_type"]
    with pytest.raises(InputError, match="unknown result column 'score': choose from "):
        classify(frame, columns=["score"])
    with pytest.raises(InputError, match="no result column asked for"):
        classify(frame, columns=[])


def test_without_warnings_fields_no_rule_reads_are_not_read() -> None:
    frame = pd.DataFrame({"Account": ["#N/A"], "Industry": ["#DIV/0!"]})
    everything = classify_detailed(frame).problems
    assert list(everything["column"]) == ["Account", "Industry"]
    typed_only = classify_detailed(frame, columns=["relationship_type"]).problems
    assert list(typed_only["column"]) == ["Industry"]


def test_clear_caches_forgets_seen_rows_not_results() -> None:
    rb = load_rulebook(None)
    header, row = ["Industry", "Billing"], ["Law firm", "Monthly retainer"]
    first = classify_rows(header, [row], rb)
    assert rb._index["cells"] and rb._index["row_verdicts"] and rb._index["header_maps"]
    engine.clear_caches(rb)
    assert not {"cells", "row_verdicts", "header_maps"} & set(rb._index)
    assert "compiled" in rb._index  # the rulebook's compiled form stays
    assert classify_rows(header, [row], rb) == first


def test_problems_frame_lists_every_bad_cell() -> None:
    frame = pd.DataFrame(
        {"Advice": ["yes", "maybe", "nah"], "Tenure": [1, "x", 3]}, index=[10, 11, 12]
    )
    problems = classify_detailed(frame).problems
    assert problems.to_dict("records") == [
        {
            "row": 11,
            "column": "Tenure",
            "field": "relationship_months",
            "value": "x",
            "why": "is not a number",
        },
        {
            "row": 11,
            "column": "Advice",
            "field": "advice",
            "value": "maybe",
            "why": "is not a known advice value (use no, yes)",
        },
        {
            "row": 12,
            "column": "Advice",
            "field": "advice",
            "value": "nah",
            "why": "is not a known advice value (use no, yes)",
        },
    ]


@pytest.mark.parametrize(
    "since",
    [
        "2023-11-22",
        dt.date(2023, 11, 22),
        dt.datetime(2023, 11, 22, 9, 30),
        pd.Timestamp("2023-11-22"),
        45252,
        "45252",
        "2023/11/22",
    ],
)
def test_tenure_from_customer_since_in_any_form(since) -> None:
    row = one(**{"Customer since": since})
    assert row["reasons"].startswith("not enough client evidence (score 48 < 50): 36-month")


def test_tenure_months_win_over_customer_since_and_as_of_is_settable() -> None:
    frame = pd.DataFrame({"Tenure": [None, 5], "Customer since": ["2020-01-31", "2020-01-31"]})
    out = classify(frame, as_of="2020-03-30")
    assert "1-month" not in out["reasons"].iloc[0]
    assert classify(frame, as_of="2021-02-01")["reasons"].iloc[0].endswith("12-month relationship")
    later = classify(pd.DataFrame({"Customer since": ["2030-01-01"]}), as_of="2026-01-01")
    assert "is after the as-of date 2026-01-01" in later["warnings"].iloc[0]
    with pytest.raises(InputError, match="as-of date 'soon' is not a date"):
        classify(frame, as_of="soon")


def test_conversion_tips_rank_by_points_and_clients_get_retention_advice() -> None:
    customer = one(Industry="Retail store", **{"Service type": "Shoes"})
    tips = customer["conversion_tips"].split("; ")
    points = [int(t.rsplit("(+", 1)[1].rstrip(")")) for t in tips]
    assert points == sorted(points, reverse=True) and len(tips) == 3
    assert tips[0].startswith("Offer your expertise and advice")
    client = one(Industry="Law firm", **{"Service type": "Tax advice"})
    assert client["conversion_tips"].startswith("Keep communication consistent and regular")
    few = classify(pd.DataFrame({"Industry": ["Bank"]}), max_tips=1)["conversion_tips"].iloc[0]
    assert few.count("(+") == 1
    assert (
        classify(pd.DataFrame({"Industry": ["Bank"]}), max_tips=0)["conversion_tips"].iloc[0] == ""
    )


def test_tip_points_are_exactly_what_the_score_would_gain() -> None:
    before = one(Industry="Bank", **{"Personalization": "Standard"})
    tip = next(t for t in before["conversion_tips"].split("; ") if "personalized" in t)
    gain = int(tip.rsplit("(+", 1)[1].rstrip(")"))
    after = one(Industry="Bank", **{"Personalization": "Tailored"})
    assert after["client_score"] - before["client_score"] == gain


def test_empty_frame_and_no_known_columns() -> None:
    empty = classify(pd.DataFrame({"Industry": pd.Series([], dtype=object)}))
    assert len(empty) == 0 and list(empty.columns) == list(RESULT_COLUMNS)
    out = classify(pd.DataFrame({"Notes": ["anything"]}))
    assert out["relationship_type"].iloc[0] == "Customer"
    with pytest.raises(InputError, match="no column recognized"):
        classify_rows(["Notes"], [["anything"]])


def test_numeric_and_string_columns_agree() -> None:
    numbers = classify(pd.DataFrame({"Tenure": np.array([40.0, np.nan, 2.0])}))
    texts = classify(pd.DataFrame({"Tenure": ["40", "", "2"]}))
    pd.testing.assert_frame_equal(numbers, texts)


def test_many_distinct_texts_take_the_vectorized_path_with_the_same_answers() -> None:
    """Above a few thousand distinct texts keyword search runs vectorized: same results."""
    rng = np.random.default_rng(3)
    words = [
        "consulting",
        "shoes",
        "Bank",
        "retainer",
        "Law firm",
        "a+b (c)",
        "Ltd",
        " ",
        "#N/A",
        "one-time",
        "SaaS",
        "design ",
        "İstanbul",
        "tax advice",
        "[x]*?",
    ]
    n = 6000
    frame = pd.DataFrame(
        {
            "Account": [f"Acct {i} {words[i % len(words)]}" for i in range(n)],
            "Industry": [f"{words[rng.integers(len(words))]} {i}" for i in range(n)],
            "Service type": [f"{i} {words[rng.integers(len(words))]}" for i in range(n)],
            "Billing": [words[rng.integers(len(words))] for _ in range(n)],
            "Tenure": rng.integers(0, 100, n).astype(object),
        }
    )
    frame.loc[::97, "Industry"] = None
    fast = classify(frame, as_of=AS_OF)
    rows = classify_rows(list(frame.columns), frame.astype(object).values.tolist(), as_of=AS_OF)
    assert [tuple(r) for r in fast.itertuples(index=False)] == rows


def test_scalar_verdict_for_one_new_pattern_equals_the_vectorized_one() -> None:
    """Excel fill-downs meet new patterns one at a time; both computations must agree."""
    from relationships.engine import _compile, _verdict_one, _verdicts
    from relationships.rulebook import default_rulebook

    rb = default_rulebook()
    compiled = _compile(rb)
    rng = np.random.default_rng(11)
    patterns = rng.random((400, len(compiled.signals))) < rng.uniform(0.05, 0.6, (400, 1))
    for limit in (0, 1, 3, 9):
        table = _verdicts(patterns, rb, compiled, limit)
        for i, row in enumerate(patterns):
            bits = sum(1 << j for j in np.flatnonzero(row).tolist())
            one = _verdict_one(bits, rb, compiled, limit)
            for name in ("score", "client", "confidence", "tips", "pro", "con", "lead"):
                assert np.array_equal(getattr(one, name)[0], getattr(table, name)[i]), (
                    name,
                    i,
                    limit,
                )


def test_conversion_candidates_are_the_customers_closest_to_client() -> None:
    from relationships.engine import conversion_candidates

    frame = pd.DataFrame(
        {"Industry": ["Bank", "Law firm", "Retail store", ""], "Tenure": [60, 5, None, 14]},
        index=["a", "b", "c", "d"],
    )
    results = classify(frame, as_of=AS_OF)
    top = conversion_candidates(results, count=2)
    assert list(top.index) == ["d", "a"]  # 44, then 33; the Law firm client is left out
    assert list(top["client_score"]) == [44, 33]
    assert top["first_tip"].iloc[0] == results.at["d", "conversion_tips"].split("; ")[0]
