"""Render the README previews of the planning templates.

    .venv/bin/python scripts/render_previews.py

builds each template (built-in rulebook, a fixed As of date so the pictures do not change
from day to day), has headless LibreOffice recalculate it and print it to PDF (each sheet's
own print set-up: landscape, fit to width), finds the first page of the template's main
sheet by its footer ('<sheet> - page P of N') and turns that page into
docs/previews/<template>.png with pdftoppm. Needs LibreOffice (soffice) and poppler-utils
(pdftoppm, pdftotext).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from workbook_templates.api import save_workbook
from workbook_templates.builders import BUILDERS, template_specs

REPO = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2025, 4, 1)  # shows overdue, due and planned rows in the samples
_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">
 <prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop>
</item>
</oor:items>
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(
            f"Error: {name} is not installed (apt-get install libreoffice-calc-nogui poppler-utils)"
        )
    return path


def _run(cmd: list[str], timeout: int = 300) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout).stdout


def _first_page_of(pdftotext: str, pdf: Path, sheet: str) -> int:
    """The PDF page (1-based) where a sheet starts: the first whose footer names it."""
    pages = _run([pdftotext, "-layout", str(pdf), "-"]).split("\f")
    footer = re.compile(rf"(^|\s){re.escape(sheet)} - page \d+ of \d+")
    for number, page in enumerate(pages, 1):
        if footer.search(page):
            return number
    sys.exit(f"Error: no page of {pdf.name} shows the sheet {sheet!r}")


_WORD = re.compile(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">')
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


def _content_band(pdftotext: str, pdf: Path, page: int) -> tuple[float, float]:
    """(top, bottom) in points of a page's text, footer aside, with a small margin."""
    html = _run([pdftotext, "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"])
    height = float(_PAGE.search(html)[2])
    words = [(float(y1), float(y2)) for y1, y2 in _WORD.findall(html) if float(y1) < height - 45]
    if not words:
        return 0.0, height
    return max(0.0, min(y1 for y1, _ in words) - 20), min(height, max(y2 for _, y2 in words) + 30)


def render(out_dir: Path, dpi: int) -> list[Path]:
    """Write one PNG per template into out_dir; returns their paths."""
    soffice, pdftoppm, pdftotext = _tool("soffice"), _tool("pdftoppm"), _tool("pdftotext")
    specs = template_specs()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="previews_") as tmp_name:
        tmp = Path(tmp_name)
        books = [
            save_workbook(build(as_of=AS_OF), tmp / f"{key}.xlsx")
            for key, build in BUILDERS.items()
        ]
        profile = tmp / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE, encoding="utf-8")
        _run(
            [
                soffice,
                f"-env:UserInstallation={profile.as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf",
                "--outdir",
                str(tmp),
                *map(str, books),
            ]
        )
        written = []
        for book in books:
            pdf = book.with_suffix(".pdf")
            if not pdf.is_file():
                sys.exit(f"Error: LibreOffice did not print {book.name}")
            page = _first_page_of(pdftotext, pdf, specs[book.stem].main_sheet)
            top, bottom = (round(y * dpi / 72) for y in _content_band(pdftotext, pdf, page))
            target = out_dir / book.stem
            _run(
                [
                    pdftoppm,
                    "-png",
                    "-r",
                    str(dpi),
                    "-f",
                    str(page),
                    "-l",
                    str(page),
                    "-y",
                    str(top),
                    "-H",
                    str(bottom - top),
                    "-singlefile",
                    str(pdf),
                    str(target),
                ]
            )
            written.append(target.with_suffix(".png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the template previews (PNG).")
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "previews")
    parser.add_argument("--dpi", type=int, default=150, help="resolution of the PNGs")
    args = parser.parse_args(argv)
    for path in render(args.out_dir, args.dpi):
        print(f"Wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
