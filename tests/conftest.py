"""Shared fixtures: labeled rows, the shared folder (seeds, corpus) and LibreOffice.

Tests that need ../shared or LibreOffice skip with a clear reason on a user's machine,
but fail under CI (CI=true), where both must be present.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO.parent / "shared"
AS_OF = "2026-11-22"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with a reason locally; fail under CI, where everything must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def labeled() -> pd.DataFrame:
    """The labeled rows, every cell as text, exactly as an analyst typed it."""
    return pd.read_csv(DATA / "labeled_rows.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    path = SHARED / "seeds"
    require(path.is_dir(), f"the seed articles are not at {path} (only in the dev checkout)")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = SHARED / "corpus"
    require((path / "MANIFEST.tsv").is_file(), f"the spreadsheet corpus is not at {path}")
    return path


@pytest.fixture(scope="session")
def soffice() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    require(exe is not None, "LibreOffice (soffice) is not installed")
    return exe
