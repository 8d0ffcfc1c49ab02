"""Hostile and broken inputs: every one must be refused (or read safely), quickly, with a
plain message naming the file and the reason. All files are generated here."""

from __future__ import annotations

import io
import resource
import struct
import time
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from relationships import xlsxio as X
from relationships.errors import InputError, LossyWorkbookError, UnsafeWorkbookError

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CFB_SIG = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

SHEET = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}">'
    '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>2</v></c></row></sheetData></worksheet>'
)
SST = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="{MAIN}">'
    "<si><t>a</t></si><si><t>b</t></si></sst>"
)


def package(
    sheet: str | bytes = SHEET,
    sst: str | bytes = SST,
    *,
    main_ns: str = MAIN,
    office_rel: str = f"{REL}/officeDocument",
    extra: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    def b(x: str | bytes) -> bytes:
        return x.encode() if isinstance(x, str) else x

    rel_ns = REL if main_ns == MAIN else "http://purl.oclc.org/ooxml/officeDocument/relationships"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>'
            "</Types>"
        ).encode(),
        "_rels/.rels": (
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{office_rel}" '
            'Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main_ns}" xmlns:r="{rel_ns}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PKG}">'
            f'<Relationship Id="rId1" Type="{rel_ns}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel_ns}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ).encode(),
        "xl/worksheets/sheet1.xml": b(sheet),
        "xl/sharedStrings.xml": b(sst),
    }
    parts.update(extra or {})
    return parts


def write_zip(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def make_cfb(streams: list[str]) -> bytes:
    """A minimal valid OLE compound file whose directory lists *streams* (no data)."""
    header = bytearray(512)
    header[0:8] = CFB_SIG
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    struct.pack_into("<109I", header, 76, 0, *([0xFFFFFFFF] * 108))
    fat = struct.pack("<128I", 0xFFFFFFFD, 0xFFFFFFFE, *([0xFFFFFFFF] * 126))
    entries = b""
    for name, kind in [("Root Entry", 5), *((s, 2) for s in streams)]:
        e = bytearray(128)
        enc = name.encode("utf-16-le") + b"\x00\x00"
        e[: len(enc)] = enc
        struct.pack_into("<HBB", e, 64, len(enc), kind, 1)
        struct.pack_into("<III", e, 68, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        struct.pack_into("<II", e, 116, 0xFFFFFFFE, 0)
        entries += bytes(e)
    return bytes(header) + fat + entries.ljust(512, b"\x00")


def refused(path: Path, pattern: str) -> UnsafeWorkbookError:
    with pytest.raises(UnsafeWorkbookError, match=pattern) as info:
        X.Workbook.open(path).close()
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------- not a workbook


def test_encrypted_cfb(tmp_path: Path) -> None:
    p = tmp_path / "secret.xlsx"
    p.write_bytes(make_cfb(["EncryptionInfo", "EncryptedPackage", "\x06DataSpaces"]))
    refused(p, r"password-protected \(encrypted\) workbook: remove the password in Excel")


def test_encrypted_cfb_with_damaged_directory(tmp_path: Path) -> None:
    p = tmp_path / "secret.xlsx"
    p.write_bytes(CFB_SIG + b"\x00" * 600 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 100)
    refused(p, "password-protected")


def test_legacy_xls(tmp_path: Path) -> None:
    p = tmp_path / "old.xls"
    p.write_bytes(make_cfb(["Workbook", "\x05SummaryInformation"]))
    refused(p, r"legacy \.xls \(Excel 97-2003\) workbook: save it as \.xlsx")


def test_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "notes.xlsx"
    p.write_text("name,amount\nacme,1\n")
    refused(p, r"not an Excel workbook \(\.xlsx/\.xlsm\)")
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    refused(empty, "not an Excel workbook")
    refused(tmp_path, "not an Excel workbook")
    with pytest.raises(InputError, match="file not found"):
        X.Workbook.open(tmp_path / "missing.xlsx")


def test_corrupt_zip(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "good.xlsx", package())
    data = good.read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    refused(cut, "corrupt workbook")
    # damage the compressed bytes of a part but keep the directory intact
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + 5
    flipped = bytearray(data)
    flipped[start : start + 20] = bytes(b ^ 0x5A for b in flipped[start : start + 20])
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(bytes(flipped))
    refused(bad, "corrupt workbook")


def test_other_office_documents(tmp_path: Path) -> None:
    docx = {
        "[Content_Types].xml": b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'content-types"><Override PartName="/word/document.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/'
        'officeDocument" Target="word/document.xml"/></Relationships>'.encode(),
        "word/document.xml": b"<w:document xmlns:w='x'/>",
    }
    refused(write_zip(tmp_path / "letter.xlsx", docx), "not an Excel workbook")
    refused(write_zip(tmp_path / "plain.xlsx", {"a.txt": b"hello"}), "not an Excel workbook")


def test_strict_ooxml(tmp_path: Path) -> None:
    strict = package(
        main_ns="http://purl.oclc.org/ooxml/spreadsheetml/main",
        office_rel="http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
    )
    refused(write_zip(tmp_path / "strict.xlsx", strict), "Strict Open XML is not supported")
    # strict workbook namespace behind a transitional relationship
    mixed = package(main_ns="http://purl.oclc.org/ooxml/spreadsheetml/main")
    refused(write_zip(tmp_path / "mixed.xlsx", mixed), "Strict Open XML is not supported")


# --------------------------------------------------------------------------- XML attacks


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ).replace("&lol0;", "&lol;")
    + f']>\n<sst xmlns="{MAIN}"><si><t>&lol9;</t></si><si><t>b</t></si></sst>'
)


def test_billion_laughs_in_shared_strings(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "lol.xlsx", package(sst=BILLION_LAUGHS))
    t0 = time.perf_counter()
    err = refused(p, r"part xl/sharedStrings\.xml contains a DOCTYPE/ENTITY declaration")
    assert time.perf_counter() - t0 < 2
    assert "XML bomb" in str(err)


def test_xxe_in_sheet(tmp_path: Path) -> None:
    xxe = SHEET.replace(
        "\n<worksheet",
        '\n<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<worksheet',
    ).replace('<c r="B2"><v>2</v></c>', '<c r="B2" t="str"><v>&xxe;</v></c>')
    refused(write_zip(tmp_path / "xxe.xlsx", package(sheet=xxe)), "sheet1.xml contains a DOCTYPE")


@pytest.mark.parametrize(
    "prolog",
    [
        "\ufeff<?xml version='1.0'?><!-- hi --><?pi x?>\n  <!DOCTYPE x>",
        "<!--" + "x" * 70_000 + "-->",  # prolog too long to check: refused as well
    ],
)
def test_doctype_hidden_in_prolog(tmp_path: Path, prolog: str) -> None:
    sst = SST.replace('<?xml version="1.0" encoding="UTF-8"?>\n', prolog)
    refused(write_zip(tmp_path / "p.xlsx", package(sst=sst.encode("utf-8"))), "sharedStrings")


def test_doctype_in_utf16_part(tmp_path: Path) -> None:
    sst = SST.replace("UTF-8", "UTF-16").replace("\n<sst", "\n<!DOCTYPE sst []>\n<sst")
    data = sst.encode("utf-16")  # with BOM
    refused(write_zip(tmp_path / "u16.xlsx", package(sst=data)), "DOCTYPE")


# --------------------------------------------------------------------------- zip bombs


def test_zip_bomb_high_ratio(tmp_path: Path) -> None:
    p = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in package().items():
            z.writestr(name, data)
        with z.open("xl/media/padding.xml", "w") as fh:
            chunk = b" " * (1 << 20)
            for _ in range(100):  # 100 MB of spaces -> about 100 KB compressed
                fh.write(chunk)
    assert p.stat().st_size < 1_000_000
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    refused(p, r"padding\.xml would inflate .* possible zip bomb")
    assert time.perf_counter() - t0 < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 50_000  # KiB


def _patch_sizes(path: Path, member: str, new_size: int, new_crc: int | None = None) -> None:
    """Rewrite the declared uncompressed size (and CRC) of *member* in both headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo(member)
    lh = info.header_offset
    struct.pack_into("<I", data, lh + 22, new_size)
    if new_crc is not None:
        struct.pack_into("<I", data, lh + 14, new_crc)
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos >= 0
        nlen = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + nlen] == member.encode():
            struct.pack_into("<I", data, pos + 24, new_size)
            if new_crc is not None:
                struct.pack_into("<I", data, pos + 16, new_crc)
            break
        pos += 4
    path.write_bytes(bytes(data))


def test_zip_bomb_declared_total(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "big.xlsx", package(extra={"xl/media/a.bin": b"\x00" * 1000}))
    _patch_sizes(p, "xl/media/a.bin", 3 * 1024**3)
    refused(p, "possible zip bomb")


def test_part_inflating_beyond_declared_size(tmp_path: Path) -> None:
    """Headers claim 100 bytes; the stream holds more: never trusted, never inflated."""
    p = write_zip(tmp_path / "liar.xlsx", package())
    sheet = package()["xl/worksheets/sheet1.xml"]
    _patch_sizes(p, "xl/worksheets/sheet1.xml", 100, zlib.crc32(sheet[:100]))
    with pytest.raises(UnsafeWorkbookError, match=r"sheet1\.xml"), X.Workbook.open(p) as wb:
        wb.candidates()
    p2 = write_zip(tmp_path / "liar2.xlsx", package())
    _patch_sizes(p2, "xl/worksheets/sheet1.xml", 100)  # CRC now wrong as well
    refused(p2, r"corrupt workbook: part xl/worksheets/sheet1\.xml cannot be decompressed")


def test_too_many_entries(tmp_path: Path) -> None:
    p = tmp_path / "many.xlsx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        for name, data in package().items():
            z.writestr(name, data)
        for i in range(10_001):
            z.writestr(f"xl/junk/{i}.bin", b"")
    refused(p, "10,007 parts .* possible zip bomb")


def test_encrypted_zip_entry(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "zc.xlsx", package())
    data = bytearray(p.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, pos + 8, struct.unpack_from("<H", data, pos + 8)[0] | 1)
    p.write_bytes(bytes(data))
    refused(p, "is encrypted")


# --------------------------------------------------------------------------- dimension bombs


def test_dimension_bomb(tmp_path: Path) -> None:
    sheet = (
        f'<worksheet xmlns="{MAIN}"><dimension ref="A1:XFD1048576"/><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c></row>'
        '<row r="1048576"><c r="XFD1048576"><v>9</v></c></row></sheetData></worksheet>'
    )
    p = write_zip(tmp_path / "dim.xlsx", package(sheet=sheet))
    assert p.stat().st_size < 2048
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with X.Workbook.open(p) as wb:
        (c,) = wb.candidates()
        assert (c.first_col, c.last_col, c.last_row) == (1, 16384, 1048576)
        rr = wb.read(c)
        assert list(rr.frame.index) == [2, 1048576]
        assert rr.frame.shape == (2, 16384)
        assert rr.frame.iloc[1, -1] == 9 and rr.frame.iloc[0, 0] == 1
        assert rr.blank_rows_skipped == 1048575 - 2
        with pytest.raises(LossyWorkbookError, match="no room"):
            X.write_classified(
                wb, c, pd.DataFrame({"r": [1, 2]}, index=[2, 1048576]), tmp_path / "o.xlsx", []
            )
        # the same file classified as a narrow table: only the rows that exist are touched
        narrow = X.TableCandidate("S", c.sheet_part, None, None, 1, 1, 2, 1048576, ("a", "b"))
        rr = wb.read(narrow)
        assert list(rr.frame.index) == [2]
        out = X.write_classified(
            wb, narrow, pd.DataFrame({"r": ["x"]}, index=[2]), tmp_path / "o.xlsx", []
        )
    assert time.perf_counter() - t0 < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # KiB
    assert out.stat().st_size < 4096
    ws = openpyxl.load_workbook(out, read_only=True)["S"]
    assert ws.max_column == 16384


def test_table_claiming_the_whole_grid(tmp_path: Path) -> None:
    table = (
        f'<table xmlns="{MAIN}" id="1" name="T" displayName="T" ref="A1:XFD1048576">'
        '<tableColumns count="2"><tableColumn id="1" name="a"/><tableColumn id="2" name="b"/>'
        "</tableColumns></table>"
    )
    sheet = SHEET.replace(
        "</sheetData>", '</sheetData><tableParts count="1"><tablePart r:id="t"/></tableParts>'
    ).replace("<worksheet ", f'<worksheet xmlns:r="{REL}" ')
    extra = {
        "xl/tables/table1.xml": table.encode(),
        "xl/worksheets/_rels/sheet1.xml.rels": (
            f'<Relationships xmlns="{PKG}"><Relationship Id="t" Type="{REL}/table" '
            'Target="../tables/table1.xml"/></Relationships>'
        ).encode(),
    }
    p = write_zip(tmp_path / "t.xlsx", package(sheet=sheet, extra=extra))
    t0 = time.perf_counter()
    with X.Workbook.open(p) as wb:
        (c,) = wb.candidates()
        assert c.last_col == 16384 and c.headers[:3] == ("a", "b", "")
        rr = wb.read(c)
        assert rr.frame.shape == (1, 16384)
    assert time.perf_counter() - t0 < 5


def test_cell_beyond_the_grid_is_refused(tmp_path: Path) -> None:
    sheet = SHEET.replace('<c r="B2">', '<c r="B2000000">')
    p = write_zip(tmp_path / "g.xlsx", package(sheet=sheet))
    with X.Workbook.open(p) as wb, pytest.raises(UnsafeWorkbookError, match="B2000000"):
        wb.candidates()
    p = write_zip(
        tmp_path / "s.xlsx",
        package(
            sheet=SHEET.replace("<v>1</v></c></row>", "<v>1</v></c></row>", 1).replace(
                '<c r="B1" t="s"><v>1</v>', '<c r="B1" t="s"><v>99</v>'
            )
        ),
    )
    with X.Workbook.open(p) as wb, pytest.raises(UnsafeWorkbookError, match="B1 .*shared string"):
        wb.candidates()


# --------------------------------------------------------------------------- hostile values


def test_formula_injection_is_written_as_text(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "in.xlsx", package())
    evil = ["=cmd|'/C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=2"]
    idx = [2] * 0 + [2]
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(p) as wb:
        (c,) = wb.candidates()
        res = pd.DataFrame({f"r{i}": [v] for i, v in enumerate(evil)}, index=idx)
        X.write_classified(wb, c, res, out, [X.NewSheet("Summary", [["h"], [evil[0]]])])
    with zipfile.ZipFile(out) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml
    assert xml.count('t="inlineStr"') == 12  # 6 headers + 6 values
    ws = openpyxl.load_workbook(out)["S"]
    assert [ws.cell(2, 3 + i).value for i in range(6)] == evil
    assert all(ws.cell(2, 3 + i).data_type == "s" for i in range(6))
    assert openpyxl.load_workbook(out)["Summary"]["A2"].data_type == "s"


def test_control_characters_are_removed(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "in.xlsx", package())
    out = tmp_path / "out.xlsx"
    with X.Workbook.open(p) as wb:
        (c,) = wb.candidates()
        res = pd.DataFrame({"why\x00": ["a\x01b\x0bc\x1f\ufffed\ttab\nline"]}, index=[2])
        X.write_classified(wb, c, res, out, [X.NewSheet("P\x02", [["x\x03"]])])
    wb2 = openpyxl.load_workbook(out)
    assert wb2["S"]["C1"].value == "why"
    assert wb2["S"]["C2"].value == "abcd\ttab\nline"
    assert wb2.sheetnames == ["S", "P_"] and wb2["P_"]["A1"].value == "x"
