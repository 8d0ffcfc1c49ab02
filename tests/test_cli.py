"""The `relationship` command line: classify CSV, rules export/check, errors and exit codes."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from typer.testing import CliRunner

from addin.cli import app
from relationships import __version__

runner = CliRunner()
ACCOUNTS = (
    "Account,Industry,Service type,Billing,Tenure (months),Notes\n"
    "Acme Inc,Law firm,Tax advice,Monthly retainer,36,keep\n"
    'Jane,Retail store,Shoes,One-time purchase,abc,=HYPERLINK("x")\n'
    "Bob,Bank,Savings account,,-12,+1\n"
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"relationship {__version__}"
    for args in (
        ["--help"],
        ["classify", "--help"],
        ["rules", "export", "--help"],
        ["rules", "check", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, args
        assert "Usage" in result.output


def test_classify_csv_keeps_input_columns_then_results(tmp_path: Path) -> None:
    src = tmp_path / "accounts.csv"
    src.write_text(ACCOUNTS, encoding="utf-8")
    before = sha(src)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["classify", str(src), "--out", str(out), "--as-of", "2026-11-22"])
    assert result.exit_code == 0, result.output
    assert sha(src) == before
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "Account",
        "Industry",
        "Service type",
        "Billing",
        "Tenure (months)",
        "Notes",
        "relationship_type",
        "client_score",
        "confidence",
        "buyer_type",
        "reasons",
        "conversion_tips",
        "warnings",
    ]
    assert [r[6] for r in rows[1:]] == ["Client", "Customer", "Customer"]
    assert rows[1][:6] == ["Acme Inc", "Law firm", "Tax advice", "Monthly retainer", "36", "keep"]
    # formula-like text is defused, numbers are not
    assert rows[2][5] == '\'=HYPERLINK("x")'
    assert rows[3][4] == "-12" and rows[3][5] == "+1"
    assert "relationship_months: 'abc' is not a number" in rows[2][12]
    assert "is negative" in rows[3][12]


def test_existing_output_needs_force_and_input_is_never_the_output(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text(ACCOUNTS, encoding="utf-8")
    out = tmp_path / "a.classified.csv"
    out.write_text("precious", encoding="utf-8")
    result = runner.invoke(app, ["classify", str(src)])
    assert result.exit_code == 1
    assert "exists already (use --force to replace it)" in result.output
    assert out.read_text(encoding="utf-8") == "precious"
    assert runner.invoke(app, ["classify", str(src), "--force"]).exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("Account,")
    result = runner.invoke(app, ["classify", str(src), "--out", str(src), "--force"])
    assert result.exit_code == 1 and "would overwrite the input" in result.output
    assert src.read_text(encoding="utf-8") == ACCOUNTS
    assert not list(tmp_path.glob(".*tmp"))


def test_one_bad_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    (tmp_path / "good.csv").write_text(ACCOUNTS, encoding="utf-8")
    (tmp_path / "bad.csv").write_text("Colour,Size\nred,big\n", encoding="utf-8")
    report = tmp_path / "run.json"
    result = runner.invoke(
        app, ["classify", str(tmp_path), "--out-dir", str(tmp_path / "o"), "--report", str(report)]
    )
    assert result.exit_code == 1
    assert (
        "bad.csv: no column recognized as a relationship field: use headers such as Industry, "
        "Service type, Billing, Tenure (months), or map a header to a field: "
        "--map 'Header=field'"
    ) in " ".join(result.output.split())
    assert (tmp_path / "o" / "good.classified.csv").is_file()
    assert not (tmp_path / "o" / "bad.classified.csv").exists()
    import json

    data = json.loads(report.read_text(encoding="utf-8"))
    verdicts = {Path(f["input"]).name: f["verdict"] for f in data["files"]}
    assert verdicts == {"bad.csv": "failed", "good.csv": "ok"}


def test_map_option_and_usage_errors(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("Kind\nLaw firm\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    result = runner.invoke(
        app, ["classify", str(src), "--out", str(out), "--map", "Kind=business_type"]
    )
    assert result.exit_code == 0, result.output
    assert "Client" in out.read_text(encoding="utf-8")
    assert runner.invoke(app, ["classify", str(src), "--map", "nonsense"]).exit_code == 2
    assert runner.invoke(app, ["classify", str(src), "--as-of", "soon"]).exit_code == 2
    missing = runner.invoke(app, ["classify", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_rules_export_and_check(tmp_path: Path) -> None:
    out = tmp_path / "rules.xlsx"
    assert runner.invoke(app, ["rules", "export", str(out)]).exit_code == 0
    result = runner.invoke(app, ["rules", "check", str(out)])
    assert result.exit_code == 0 and "OK (" in result.output
    assert runner.invoke(app, ["rules", "export", str(out)]).exit_code == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"setting": 1}', encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert "section 'setting' must be a list of entries" in result.output
