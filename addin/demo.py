"""`relationship demo`: the main job on the bundled sample workbook, with a readable summary.

Classifies the sample account list with the batch tool, builds the planning templates and
writes everything to one folder (default ``demo-output/``), which it owns: its files are
replaced on every run. Nothing outside that folder is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from relationships.batch import FileReport, classify_file
from relationships.engine import conversion_candidates

SAMPLE_NAME = "sample_accounts.xlsx"


def sample_workbook() -> Path:
    """The bundled sample workbook (shipped inside the package)."""
    ref = resources.files("addin").joinpath("data", SAMPLE_NAME)
    path = Path(str(ref))
    if not path.is_file():  # pragma: no cover - only if the package was installed without data
        raise FileNotFoundError(f"the bundled sample workbook is missing: {path}")
    return path


@dataclass
class DemoResult:
    report: FileReport
    results: pd.DataFrame  # the classified rows (account, type, score, buyer type, first tip)
    templates: list[Path] = field(default_factory=list)
    sample: Path | None = None
    out_dir: Path | None = None


def run_demo(out_dir: Path, *, as_of: dt.date | None = None) -> DemoResult:
    """Classify the sample into ``out_dir`` and build the templates there."""
    from relationships import xlsxio
    from workbook_templates.api import build_all

    out_dir.mkdir(parents=True, exist_ok=True)
    sample = sample_workbook()
    output = out_dir / SAMPLE_NAME.replace(".xlsx", ".classified.xlsx")
    report = classify_file(sample, out=output, as_of=as_of, force=True)
    if not report.ok:
        raise RuntimeError(f"the demo could not classify the sample: {report.reason}")
    with xlsxio.Workbook.open(output) as wb:
        cand = next(
            c
            for c in wb.candidates()
            if c.sheet_name == report.sheet and c.table_name == report.table
        )
        results = wb.read(cand).frame
    templates = build_all(out_dir / "templates", force=True)
    return DemoResult(report, results, templates, sample, out_dir)


def top_candidates(results: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """Customers closest to becoming clients, with the first conversion tip."""
    top = conversion_candidates(results, count)
    account = next(
        (c for c in results.columns if str(c).lower().startswith("account")), results.columns[0]
    )
    return pd.DataFrame(
        {
            "row": top.index,
            "account": results.loc[top.index, account].to_numpy(),
            "score": top["client_score"].to_numpy(),
            "first tip": top["first_tip"].to_numpy(),
        }
    )
