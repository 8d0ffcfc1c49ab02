"""LibreOffice helpers for the template tests: recalculate workbooks, read them back.

``recalc`` converts many files in one headless ``soffice`` call (a few seconds in all),
with a private profile told to recalculate every formula on load, so results never come
from cached values. Openpyxl then reads the converted files with ``data_only=True``.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

# Always recalculate OOXML files on load (0 = always, 1 = never, 2 = ask).
_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop>
</item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop>
</item>
</oor:items>
"""
ERROR_PREFIXES = ("#", "Err:")


def _profile(root: Path) -> str:
    user = root / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, encoding="utf-8")
    return root.as_uri()


def convert(
    soffice: str, files: Sequence[Path], out_dir: Path, *, to: str = "xlsx", timeout: int = 240
) -> list[Path]:
    """Convert files with headless LibreOffice (recalculating them); returns the outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo_profile_") as profile:
        cmd = [
            soffice,
            f"-env:UserInstallation={_profile(Path(profile))}",
            "--headless",
            "--norestore",
            "--convert-to",
            to,
            "--outdir",
            str(out_dir),
            *map(str, files),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    outputs = [out_dir / f"{Path(f).stem}.{to.split(':')[0]}" for f in files]
    missing = [str(p) for p in outputs if not p.is_file()]
    if missing:
        raise RuntimeError(
            f"LibreOffice did not write {', '.join(missing)} "
            f"(exit {done.returncode}): {done.stdout} {done.stderr}"
        )
    return outputs


def recalc(soffice: str, files: Sequence[Path], out_dir: Path) -> list[Path]:
    """Recalculated copies of xlsx files (same names, in out_dir)."""
    return convert(soffice, files, out_dir, to="xlsx")


def is_error(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(ERROR_PREFIXES)


def formula_cells(path: Path) -> Iterable[tuple[str, str, str]]:
    """(sheet, coordinate, formula) of every formula cell of a workbook."""
    wb = load_workbook(path)
    try:
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    if cell.data_type == "f" or (
                        isinstance(cell.value, str) and cell.value.startswith("=")
                    ):
                        yield ws.title, cell.coordinate, str(cell.value)
    finally:
        wb.close()


def read_table(path: Path, sheet: str, header_row: int, n_rows: int) -> list[dict[str, Any]]:
    """Rows under a header row as dicts (values as cached: data_only)."""
    wb = load_workbook(path, data_only=True)
    try:
        ws = wb[sheet]
        rows = list(ws.iter_rows(min_row=header_row, max_row=header_row + n_rows, values_only=True))
    finally:
        wb.close()
    header = [h for h in rows[0]]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]
