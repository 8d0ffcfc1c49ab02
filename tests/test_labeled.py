"""The labeled rows: each one is a seed sentence turned into an analyst's row."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from relationships import classify
from relationships.engine import RESULT_COLUMNS, classify_rows
from tests.conftest import AS_OF, DATA

ROWS = pd.read_csv(DATA / "labeled_rows.csv", dtype=str, keep_default_na=False)
INPUT_COLUMNS = [
    c for c in ROWS.columns if c not in ("expected_type", "expected_buyer_type", "seed")
]


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return classify(ROWS[INPUT_COLUMNS], as_of=AS_OF)


def test_enough_rows_cover_every_seed() -> None:
    assert len(ROWS) >= 40
    cited = {s.split(":", 1)[0] for s in ROWS["seed"]}
    assert cited == {
        "000_96f26f3ceb6dfeb7.txt",
        "001_372c9482e13135c0.txt",
        "002_fcd6a2413cbfce1d.txt",
        "003_e4be254b6166faa6.txt",
        "004_3a6dd8ead22f8ab4.txt",
    }
    assert set(ROWS["expected_type"]) == {"Client", "Customer"}
    assert set(ROWS["expected_buyer_type"]) == {"Consumer", "Business", "Unknown"}


@pytest.mark.parametrize(
    "business",
    [
        "Law firm",
        "Design studio",
        "Insurance agency",
        "Accounting firm",
        "Real estate agency",
        "Marketing agency",
        "Advertising agency",
        "SaaS",
        "Retail store",
        "Subscription box",
        "Bank",
        "Restaurant",
        "Amusement park",
    ],
)
def test_every_seed_business_type_is_covered(business: str) -> None:
    assert business in set(ROWS["Industry"])


@pytest.mark.parametrize("i", range(len(ROWS)), ids=list(ROWS["Account"]))
def test_labeled_row(i: int, results: pd.DataFrame) -> None:
    row, got = ROWS.iloc[i], results.iloc[i]
    assert (got["relationship_type"], got["buyer_type"]) == (
        row["expected_type"],
        row["expected_buyer_type"],
    ), f"{row['seed']}\nreasons: {got['reasons']}"
    assert got["reasons"], "every verdict explains itself"
    if got["relationship_type"] == "Customer":
        assert re.search(r"\(\+\d+\)", got["conversion_tips"]), "customers get scored tips"
    else:
        assert "(+" not in got["conversion_tips"], "clients get retention advice"


@pytest.mark.parametrize("i", range(len(ROWS)), ids=list(ROWS["Account"]))
def test_seed_sentence_is_quoted_verbatim(i: int, seeds_dir) -> None:
    name, quote = ROWS["seed"].iloc[i].split(": ", 1)
    text = " ".join((seeds_dir / name).read_text(encoding="utf-8").split())
    assert " ".join(quote.split()) in text


def test_row_path_equals_frame_path_on_every_labeled_row(results: pd.DataFrame) -> None:
    headers = list(INPUT_COLUMNS)
    cells = ROWS[INPUT_COLUMNS].values.tolist()
    one_by_one = [classify_rows(headers, [r], as_of=AS_OF)[0] for r in cells]
    all_at_once = classify_rows(headers, cells, as_of=AS_OF)
    expected = [tuple(r) for r in results[list(RESULT_COLUMNS)].itertuples(index=False)]
    assert one_by_one == expected
    assert all_at_once == expected
