"""Lossless write-back over a corpus of real-world spreadsheets (Apache POI's test files).

The corpus lives outside the repository (../shared/corpus, read only). Without it the test
is skipped, except on CI (CI=true) where a missing corpus is a failure.
"""

from __future__ import annotations

import collections
import csv
import os
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from relationships import xlsxio as X
from relationships.errors import LossyWorkbookError, UnsafeWorkbookError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RESULT_NAMES = ["relationship_type", "client_score", "reasons"]
GENERIC = re.compile(r"'[^']*'|\b[A-Z]{1,3}[0-9]+(:[A-Z]{1,3}[0-9]+)?\b|\d+|\(.*?\)")


def corpus_files() -> list[tuple[Path, str]]:
    manifest = CORPUS / "MANIFEST.tsv"
    out = []
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = CORPUS / row["local_path"]
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                out.append((path, row.get("excel_authored_subset", "")))
    return sorted(out)


def dummy_results(index: pd.Index) -> pd.DataFrame:
    rows = [int(r) for r in index]
    return pd.DataFrame(
        {
            "relationship_type": [("client", "customer", "=HYPERLINK(1)")[r % 3] for r in rows],
            "client_score": [r * 0.25 for r in rows],
            "reasons": [f"reason for row {r}" if r % 5 else None for r in rows],
        },
        index=index,
    )


def extra_sheets() -> list[X.NewSheet]:
    return [
        X.NewSheet(
            "Summary",
            [["Type", "Count"], ["client", 2], ["customer", 1]],
            col_widths=[20, 10],
            chart=X.BarChart("Relationships", (1, 2, 3), (2, 2, 3)),
        ),
        X.NewSheet("Problems", [["Row", "Problem"], [2, "example"]]),
    ]


def edited_parts(src: zipfile.ZipFile, cand: X.TableCandidate) -> set[str]:
    """The parts write_classified may change, derived independently from the package."""

    def rels(part: str) -> dict[str, str]:
        d, f = os.path.split(part)
        name = os.path.join(d, "_rels", f + ".rels")
        if name not in src.namelist():
            return {}
        root = ET.fromstring(src.read(name))
        out = {}
        for r in root:
            target = r.get("Target", "")
            full = target.lstrip("/") if target.startswith("/") else os.path.join(d, target)
            out[r.get("Type", "").rsplit("/", 1)[-1]] = os.path.normpath(full)
        return out

    main = rels("")["officeDocument"].lstrip("/")
    wb_rels = rels(main)
    out = {
        cand.sheet_part,
        main,
        os.path.join(os.path.dirname(main), "_rels", os.path.basename(main) + ".rels"),
    }
    out.add("[Content_Types].xml")
    if "styles" in wb_rels:
        out.add(wb_rels["styles"])
    if cand.table_part:
        out.add(cand.table_part)
    return out


def sheet_cells(xml: bytes) -> dict[tuple[int, int], tuple[dict[str, str], list[bytes]]]:
    """(row, col) -> (attributes, serialized children) of every <c>, with implicit refs."""
    cells = {}
    row = col = 0
    sd = None
    for ev, el in ET.iterparse(__import__("io").BytesIO(xml), events=("start", "end")):
        if ev == "start":
            if el.tag == M + "row":
                row = int(el.get("r")) if el.get("r") else row + 1
                col = 0
            elif el.tag == M + "sheetData":
                sd = el
            continue
        if el.tag == M + "c":
            ref = el.get("r")
            if ref:
                m = re.match(r"([A-Z]+)(\d+)$", ref)
                col, row = X.col_index(m.group(1)), int(m.group(2))
            else:
                col += 1
            attrs = {k: v for k, v in el.attrib.items() if k != "r"}
            cells[(row, col)] = (attrs, [ET.tostring(ch) for ch in el])
        elif el.tag == M + "row" and sd is not None:
            sd.clear()
    return cells


def check_file(path: Path, tmp: Path, stats: collections.Counter, problems: list[str]) -> str:
    try:
        with X.Workbook.open(path) as wb:
            cands = [
                c
                for c in wb.candidates()
                if sum(1 for h in c.headers if h.strip()) >= 2 and c.last_row > c.header_row
            ]
            chosen = None
            for c in cands:
                rr = wb.read(c)
                if len(rr.frame):
                    chosen = c
                    break
            if chosen is None:
                return "no table-like candidate"
            cand = chosen
            # the byte scanner and the exact (iterparse) scanner agree
            with pytest.MonkeyPatch.context() as mp:

                def no_fast(*a: object, **k: object) -> None:
                    raise X._NeedSlow

                mp.setattr(X.Workbook, "_fast_read", no_fast)
                slow = wb.read(cand)
            if not rr.frame.equals(slow.frame) or list(rr.frame.index) != list(slow.frame.index):
                problems.append(f"{path.name}: byte scanner and iterparse disagree on {cand.ref}")
            sst_part = next(
                (t for typ, t in wb._wb_rels.values() if typ.endswith("/sharedStrings") and t),
                None,
            )
            if sst_part and wb._pkg.find(sst_part):
                name = wb._pkg.find(sst_part)
                try:
                    fast_sst = wb._sst_fast(name)
                except X._NeedSlow:
                    fast_sst = None
                if fast_sst is not None and fast_sst != wb._sst_slow(name):
                    problems.append(f"{path.name}: fast and exact shared-string parsers disagree")
            results = dummy_results(rr.frame.index)
            out = tmp / (path.stem + wb.expected_suffix)
            X.write_classified(wb, cand, results, out, extra_sheets(), force=True)
    except (UnsafeWorkbookError, LossyWorkbookError) as e:
        reason = str(e).split(": ", 1)[-1]
        generic = GENERIC.sub("_", reason)[:90]
        stats[f"{type(e).__name__}: {generic}"] += 1
        return "refused"
    except Exception as e:  # noqa: BLE001 - every other exception is a test failure
        problems.append(f"{path.name}: unexpected {type(e).__name__}: {e}")
        return "error"

    with zipfile.ZipFile(path) as zs, zipfile.ZipFile(out) as zo:
        src_names, out_names = set(zs.namelist()), set(zo.namelist())
        missing = src_names - out_names
        if missing:
            problems.append(f"{path.name}: parts missing from output: {sorted(missing)}")
        edited = edited_parts(zs, cand)
        for name in src_names - edited:
            if name in out_names and zs.read(name) != zo.read(name):
                problems.append(f"{path.name}: part {name} changed")
        before = sheet_cells(zs.read(cand.sheet_part))
        after = sheet_cells(zo.read(cand.sheet_part))
    new_cols = range(cand.last_col + 1, cand.last_col + 4)
    for pos, cell in before.items():
        if pos[1] in new_cols and after.get(pos) != cell:
            # only a style-only cell may be replaced by a result cell
            if cell[1]:
                problems.append(f"{path.name}: non-empty cell {pos} replaced")
            continue
        if after.get(pos) != cell:
            problems.append(f"{path.name}: cell {pos} of {cand.sheet_part} changed")
            break
    # the new cells are there, with the right values
    with X.Workbook.open(out) as back:
        wide = X.TableCandidate(
            cand.sheet_name,
            cand.sheet_part,
            cand.table_name,
            cand.table_part,
            cand.header_row,
            cand.first_col,
            cand.last_col + 3,
            cand.last_row,
            (),
        )
        got = back.read(wide).frame
        header = {
            c: v
            for c, v in back._collect_rows(cand.sheet_part, {cand.header_row})[
                cand.header_row
            ].items()
            if c in new_cols
        }
    names = [header.get(c) for c in new_cols]
    if [n.rstrip("0123456789") if n else n for n in names] != RESULT_NAMES:
        problems.append(f"{path.name}: new header cells are {names}")
    res = dummy_results(rr.frame.index)
    for k, col in enumerate(res.columns):
        want = [None if isinstance(v, float) and v != v else v for v in res[col].tolist()]
        have = got.iloc[:, -3 + k].reindex(res.index).tolist()
        if have != want:
            problems.append(f"{path.name}: result column {col} reads back wrong")
            break
    orig = got.iloc[:, : len(rr.frame.columns)].reindex(rr.frame.index)
    if orig.values.tolist() != rr.frame.values.tolist():
        problems.append(f"{path.name}: original values read back differently")
    # openpyxl opens the output whenever it opens the input
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ox = openpyxl.load_workbook(out)
        except Exception as e:  # noqa: BLE001
            try:
                openpyxl.load_workbook(path)
            except Exception:  # noqa: BLE001 - openpyxl cannot read the input either
                stats["openpyxl cannot read the input either (output check skipped)"] += 1
            else:
                problems.append(f"{path.name}: openpyxl cannot open the output: {e!r}")
        else:
            ws = ox[cand.sheet_name]
            vals = [ws.cell(cand.header_row, c).value for c in new_cols]
            if [v.rstrip("0123456789") if v else v for v in vals] != RESULT_NAMES:
                problems.append(f"{path.name}: openpyxl reads new headers as {vals}")
            if not {"Summary", "Problems"} <= {n.split(" (")[0] for n in ox.sheetnames}:
                problems.append(f"{path.name}: extra sheets missing: {ox.sheetnames}")
    out.unlink()
    return "processed"


def run_one(path: Path, tmp: Path) -> tuple[str, collections.Counter, list[str]]:
    stats: collections.Counter = collections.Counter()
    problems: list[str] = []
    result = check_file(path, tmp, stats, problems)
    return result, stats, problems


def test_corpus_lossless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        msg = f"corpus not found at {CORPUS} (expected ../shared/corpus next to the repository)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    files = corpus_files()
    assert len(files) > 100, "the corpus looks incomplete"
    outcome: collections.Counter = collections.Counter()
    by_subset: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    problems: list[str] = []
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = [(subset, pool.submit(run_one, path, tmp_path)) for path, subset in files]
        for subset, job in jobs:
            result, file_stats, file_problems = job.result()
            outcome[result] += 1
            by_subset[(subset or "?", result)] += 1
            reasons.update(file_stats)
            problems.extend(file_problems)
    with capsys.disabled():
        print(f"\ncorpus: {len(files)} files: " + ", ".join(f"{k} {v}" for k, v in outcome.items()))
        for (subset, result), n in sorted(by_subset.items()):
            print(f"  excel_authored_subset={subset}: {result} {n}")
        for reason, n in reasons.most_common():
            print(f"  {n:3d} x {reason}")
    assert not problems, "\n".join(problems[:50])
    assert outcome["processed"] >= 100
