"""The rulebook: shipped data, validated at load, round-tripped through a sheet."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from relationships.errors import RulebookError
from relationships.rulebook import (
    SHEET_COLUMNS,
    default_rulebook,
    export_rulebook,
    load_rulebook,
    rulebook_from_dict,
    rulebook_from_rows,
    rulebook_to_dict,
    rulebook_to_rows,
)

SEED_SOURCE = re.compile(r"^(\d{3}_[0-9a-f]{16}\.txt): (.+)$", re.S)


def base() -> dict:
    return copy.deepcopy(rulebook_to_dict(default_rulebook()))


def entry(data: dict, section: str, key: str, value: str) -> dict:
    return next(e for e in data[section] if e.get(key) == value)


def test_default_rulebook_loads_with_every_section() -> None:
    rb = default_rulebook()
    assert len(rb.signals) >= 20 and len(rb.tips) >= 10 and len(rb.buyer_rules) >= 2
    assert {f.name for f in rb.fields} >= {
        "account",
        "business_type",
        "offering",
        "payment_model",
        "relationship_months",
        "customer_since",
        "purchases_per_year",
        "personalization",
        "advice",
        "contacts_per_month",
        "personal_use",
        "decision_days",
        "price_focus",
        "referrals",
    }


def _domain_sources(rb) -> list[tuple[str, str]]:
    out = [(f"field {f.name}", f.source) for f in rb.fields]
    out += [(f"vocabulary {v.field}={v.value}", v.source) for v in rb.vocabularies]
    out += [(f"signal {s.id}", s.source) for s in rb.signals]
    out += [(f"buyer_rule {b.id}", b.source) for b in rb.buyer_rules]
    out += [(f"tip {t.id}", t.source) for t in rb.tips]
    out += [(f"setting {n}", src) for n, src in rb.settings.sources if n in ("base", "threshold")]
    return out


def test_every_rule_cites_a_seed_and_every_other_entry_a_reason() -> None:
    rb = default_rulebook()
    for what, source in _domain_sources(rb):
        assert SEED_SOURCE.match(source), f"{what} does not cite a seed: {source!r}"
    for name, source in rb.settings.sources:
        assert source, f"setting {name} has no source"
    for w in rb.ignore_words:
        assert w.source


def test_seed_quotes_are_verbatim(seeds_dir: Path) -> None:
    for what, source in _domain_sources(default_rulebook()):
        name, quote = SEED_SOURCE.match(source).groups()
        text = " ".join((seeds_dir / name).read_text(encoding="utf-8").split())
        assert " ".join(quote.split()) in text, f"{what}: quote not found in {name}"


def test_round_trip_dict_rows_json_and_sheet(tmp_path: Path) -> None:
    rb = default_rulebook()
    assert rulebook_from_dict(rulebook_to_dict(rb)) == rb
    assert rulebook_from_rows(rulebook_to_rows(rb)) == rb
    export_rulebook(rb, tmp_path / "rules.json")
    assert load_rulebook(tmp_path / "rules.json") == rb
    export_rulebook(rb, tmp_path / "rules.xlsx")
    assert load_rulebook(tmp_path / "rules.xlsx") == rb
    ws = load_workbook(tmp_path / "rules.xlsx")["Rules"]
    assert [c.value for c in ws[1]] == list(SHEET_COLUMNS)
    # keywords keep their word-boundary spaces and synonyms like "1" stay text
    values = [c.value for c in ws["E"]]
    assert " law " in values and "1" in values


def test_edited_sheet_loads_and_changes_the_engine(tmp_path: Path) -> None:
    import pandas as pd

    from relationships import classify

    path = export_rulebook(default_rulebook(), tmp_path / "rules.xlsx")
    wb = load_workbook(path)
    ws = wb["Rules"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "signal" and row[1].value == "personalization_tailored":
            row[5].value = 30
    wb.save(path)
    edited = load_rulebook(path)
    frame = pd.DataFrame({"Personalization": ["Tailored"]})
    assert classify(frame)["client_score"].iloc[0] == 55
    assert classify(frame, edited)["client_score"].iloc[0] == 70


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(weight="lots"),
            "rulebook: signal 'advice_yes': 'weight' must be a number, got 'lots'",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(field="mood"),
            "rulebook: signal 'advice_yes': field 'mood' is not defined",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(test="contains_any"),
            "rulebook: signal 'advice_yes': test must be is for a category field, "
            "got 'contains_any'",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(value="maybe"),
            "rulebook: signal 'advice_yes': value 'maybe' is not in the vocabulary of field "
            "'advice'",
        ),
        (
            lambda d: entry(d, "signal", "id", "tenure_long").update(weight=-3),
            "rulebook: signal 'tenure_long': an at_least signal must have weight >= 0 "
            "(more is more client-like), got -3",
        ),
        (
            lambda d: entry(d, "signal", "id", "tenure_new").update(weight=2),
            "rulebook: signal 'tenure_new': a below signal must have weight <= 0 "
            "(more is more client-like), got 2",
        ),
        (
            lambda d: entry(d, "signal", "id", "offering_goods").update(keywords=["shoe*"]),
            "rulebook: signal 'offering_goods': keyword 'shoe*' holds the wildcard '*'",
        ),
        (
            lambda d: entry(d, "signal", "id", "offering_goods").update(keywords=["Shoes"]),
            "rulebook: signal 'offering_goods': keyword 'Shoes' must be lower-case",
        ),
        (
            lambda d: entry(d, "signal", "id", "offering_goods").update(suppressed_by=["nope"]),
            "rulebook: signal 'offering_goods': suppressed_by names unknown signal 'nope'",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(suppressed_by=["tenure_long"]),
            "rulebook: signal 'advice_yes': only a signal with weight <= 0 can be suppressed",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(reason="uses {colour}"),
            "rulebook: signal 'advice_yes': reason uses unknown placeholder {colour} "
            "(allowed: {value}, {match})",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").update(colour="red"),
            "rulebook: signal 'advice_yes': unknown key 'colour' (allowed: field, id, keywords, "
            "reason, source, suppressed_by, test, threshold, value, weight)",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_no").update(id="advice_yes"),
            "rulebook: signal 'advice_yes': id is used twice",
        ),
        (
            lambda d: entry(d, "signal", "id", "advice_yes").pop("source"),
            "rulebook: signal 'advice_yes': 'source' is missing",
        ),
        (
            lambda d: entry(d, "tip", "id", "tip_personalize").update(addresses=["advice_no"]),
            "rulebook: tip 'tip_personalize': addresses 'advice_no', which is not a client signal "
            "(weight > 0)",
        ),
        (
            lambda d: entry(d, "tip", "id", "tip_personalize").update(title="a; b"),
            "rulebook: tip 'tip_personalize': title must not contain ';' or a line break "
            "(tips are listed with '; ')",
        ),
        (
            lambda d: entry(d, "setting", "name", "threshold").update(value=150),
            "rulebook: setting 'threshold': must lie between min_score and max_score, got 150",
        ),
        (
            lambda d: d["setting"].remove(entry(d, "setting", "name", "base")),
            "rulebook: rulebook: setting 'base' is missing",
        ),
        (
            lambda d: entry(d, "field", "name", "referrals")["headers"].append("Industry"),
            "rulebook: field 'referrals': header 'Industry' already belongs to field "
            "'business_type'",
        ),
        (
            lambda d: entry(d, "vocabulary", "value", "no").update(synonyms=["yes"]),
            "rulebook: vocabulary 'advice=no': synonym 'yes' already means 'yes'",
        ),
        (
            lambda d: entry(d, "buyer_rule", "id", "buyer_personal_use").update(buyer_type="Alien"),
            "rulebook: buyer_rule 'buyer_personal_use': buyer_type must be Consumer or Business, "
            "got 'Alien'",
        ),
    ],
)
def test_bad_rulebook_fails_naming_entry_and_problem(mutate, message: str) -> None:
    data = base()
    mutate(data)
    with pytest.raises(RulebookError) as exc:
        rulebook_from_dict(data, "rulebook")
    assert str(exc.value) == message


def test_bad_sheet_rows_name_the_row() -> None:
    rows = rulebook_to_rows(default_rulebook())
    at = next(i for i, r in enumerate(rows) if r[0] == "signal" and r[1] == "advice_yes")
    rows[at][5] = "heavy"
    with pytest.raises(RulebookError) as exc:
        rulebook_from_rows(rows, "my.xlsx sheet 'Rules'")
    assert (
        str(exc.value)
        == f"my.xlsx sheet 'Rules' row {at + 1}: 'weight' must be a number, got 'heavy'"
    )
    with pytest.raises(RulebookError, match="no header row with the columns section, id"):
        rulebook_from_rows([["a", "b"], [1, 2]])


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(RulebookError, match=r"bad.toml: not valid TOML"):
        load_rulebook(tmp_path / "bad.toml")
    (tmp_path / "r.json").write_text(json.dumps({"setting": 3}), encoding="utf-8")
    with pytest.raises(RulebookError, match="section 'setting' must be a list of entries"):
        load_rulebook(tmp_path / "r.json")
    with pytest.raises(RulebookError, match="no such file"):
        load_rulebook(tmp_path / "missing.toml")
    (tmp_path / "r.txt").write_text("x", encoding="utf-8")
    with pytest.raises(RulebookError, match="must be a .toml, .json, .xlsx or .xlsm file"):
        load_rulebook(tmp_path / "r.txt")
