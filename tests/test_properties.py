"""Invariants of classify, checked on generated rows (Hypothesis)."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relationships import classify
from relationships.engine import RESULT_COLUMNS, classify_rows
from relationships.rulebook import default_rulebook
from tests.conftest import AS_OF

RB = default_rulebook()
HEADERS = {
    "business_type": "Industry",
    "offering": "Service type",
    "payment_model": "Billing",
    "relationship_months": "Tenure (months)",
    "purchases_per_year": "Orders / year",
    "personalization": "Personalization",
    "advice": "Advice",
    "contacts_per_month": "Contacts per month",
    "personal_use": "Personal use",
    "decision_days": "Days to decide",
    "price_focus": "Price or value",
    "referrals": "Referrals",
}
WORDS = sorted({k.strip() for s in RB.signals for k in s.keywords if k.strip().isalpha()})
VOCAB = {f: [syn for v in RB.vocabularies if v.field == f for syn in v.synonyms] for f in HEADERS}
NUMERIC = [f for f in HEADERS if RB.field(f).kind == "number"]
CATEGORY = [f for f in HEADERS if RB.field(f).kind == "category"]
TEXT = [f for f in HEADERS if RB.field(f).kind == "text"]

anything = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["#N/A", "#DIV/0!", "", " ", "=1+1", "1,200", "2021-02-30"]),
)


def realistic(field: str):
    if field in NUMERIC:
        return st.one_of(st.none(), st.integers(0, 400), st.floats(0, 400))
    if field in CATEGORY:
        return st.one_of(st.none(), st.sampled_from(VOCAB[field]))
    return st.one_of(
        st.none(), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
    )


rows = st.fixed_dictionaries({HEADERS[f]: realistic(f) for f in HEADERS})
messy_rows = st.fixed_dictionaries({HEADERS[f]: anything for f in HEADERS})


def score(row: dict) -> int:
    # the row path: equal to classify() on every row (checked above), and fast
    return classify_rows(list(row), [list(row.values())], as_of=AS_OF)[0][1]


@settings(max_examples=60, deadline=None)
@given(st.lists(messy_rows, min_size=0, max_size=25), st.randoms(use_true_random=False))
def test_never_raises_keeps_index_and_order_and_is_deterministic(batch, rnd) -> None:
    index = list(range(len(batch)))
    rnd.shuffle(index)
    frame = pd.DataFrame(
        batch, index=pd.Index(index, dtype="int64"), columns=list(HEADERS.values())
    )
    first = classify(frame, as_of=AS_OF)
    assert list(first.columns) == list(RESULT_COLUMNS)
    assert first.index.equals(frame.index)
    assert first["client_score"].between(0, 100).all()
    assert first["confidence"].between(0, 1).all()
    assert set(first["relationship_type"]) <= {"Client", "Customer"}
    pd.testing.assert_frame_equal(first, classify(frame, as_of=AS_OF))
    # the row path gives exactly the same answers
    cells = frame.astype(object).where(frame.notna(), None).values.tolist()
    fast = classify_rows(list(frame.columns), cells, as_of=AS_OF)
    assert fast == [tuple(r) for r in first.itertuples(index=False)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.sampled_from(NUMERIC), st.floats(0, 500))
def test_more_of_a_number_never_lowers_the_score(row, field, more) -> None:
    header = HEADERS[field]
    higher = dict(row)
    higher[header] = (row[header] or 0) + more
    lower = dict(row, **{header: row[header] or 0})
    assert score(higher) >= score(lower)


@settings(max_examples=150, deadline=None)
@given(rows, st.sampled_from([s for s in RB.signals if s.weight > 0]))
def test_adding_client_evidence_never_lowers_the_score(row, signal) -> None:
    header = HEADERS.get(signal.field)
    if header is None:
        return
    if signal.test == "is":  # a category holds one value: add the evidence where none was
        row = dict(row, **{header: None})
    added = dict(row)
    if signal.test == "contains_any":
        added[header] = f"{row[header] or ''} {signal.keywords[0].strip()}".strip()
    elif signal.test == "is":
        added[header] = signal.value
    else:
        added[header] = max(row[header] or 0, signal.threshold)
    assert score(added) >= score(row)


@settings(max_examples=150, deadline=None)
@given(rows, st.sampled_from(list(HEADERS.values())), st.sampled_from(["", None, "???", "#N/A"]))
def test_missing_or_unreadable_is_neutral(row, header, blank) -> None:
    without = {k: v for k, v in row.items() if k != header}
    assert score(dict(row, **{header: blank})) == score(without)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(rows, messy_rows), min_size=0, max_size=30),
    st.sets(st.sampled_from(RESULT_COLUMNS), min_size=1),
)
def test_asking_for_some_columns_gives_exactly_those_of_the_full_result(batch, wanted) -> None:
    frame = pd.DataFrame(batch, columns=list(HEADERS.values()))
    frame.insert(0, "Account", [f"A{i}" if i % 3 else "#N/A" for i in range(len(frame))])
    full = classify(frame, as_of=AS_OF)
    some = classify(frame, as_of=AS_OF, columns=sorted(wanted))
    pd.testing.assert_frame_equal(some, full[[c for c in RESULT_COLUMNS if c in wanted]])
