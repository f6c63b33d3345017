"""A corpus of bad and awkward files (issue 4 §2 and §8), each made in tmp_path: every one ends in a clear
TableError/FileFetchError message or a summary whose numbers are asserted. Each case runs under a timeout
(nothing hangs); the big ones run under tracemalloc with a peak limit (memory stays bounded).

Cases already covered in test_summarize.py (delimiters, quoted newlines, the four-format date column, JSON,
Parquet, a zip that is not a workbook) are not repeated here.
"""

from __future__ import annotations

import csv
import io
import threading
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.files import FileFetchError, SlackFiles, max_bytes_for
from bot.types import FileRef
from generation.reports import TableError, load_table, summarize_table
from generation.reports.profile import MAX_PROFILED_COLUMNS, profile

pytestmark = pytest.mark.timeout(60)  # no case may hang; the slowest takes a few seconds


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def refused(path: Path, *words: str, **kw: object) -> str:
    """load_table must raise a TableError whose user_message names the file and contains every word."""
    with pytest.raises(TableError) as err:
        load_table(path, **kw)  # type: ignore[arg-type]
    msg = err.value.user_message
    assert path.name in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    return msg


@contextmanager
def peak_below(limit_mb: float) -> Iterator[None]:
    """Python-level allocations (numpy's included) peak under limit_mb inside the block."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / 1e6 < limit_mb, f"peak {peak / 1e6:.0f} MB over {limit_mb} MB"


def export_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [c for row in csv.reader(f) for c in row]


# ------------------------------------------------------------------------------------ refused, clearly


def test_empty_file(tmp_path: Path) -> None:
    refused(write(tmp_path, "empty.csv", b""), "empty")


def test_only_blank_lines(tmp_path: Path) -> None:
    refused(write(tmp_path, "blank.csv", "\n\r\n   \n\t\n"), "empty")


def test_header_only(tmp_path: Path) -> None:
    msg = refused(write(tmp_path, "header.csv", "region,sales,units\n"), "header", "no data rows")
    assert "region" in msg


def test_binary_named_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    refused(write(tmp_path, "data.csv", rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()), "binary")


def test_image_named_csv(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    refused(write(tmp_path, "chart.csv", png), "not a table")


def test_html_page_names_the_missing_scope(tmp_path: Path) -> None:
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><title>Slack</title></head><body><form>"
            "Sign in to your workspace</form></body></html>\n")
    refused(write(tmp_path, "export.csv", page), "web page", "files:read")
    refused(write(tmp_path, "export2.csv", "\ufeff  \n<html><body>x</body></html>"), "web page")


def test_zip_bomb_xlsx_is_refused_before_unpacking(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b" " * 60_000_000)  # 60 MB of spaces packs to ~60 KB
    path = write(tmp_path, "bomb.xlsx", buf.getvalue())
    assert path.stat().st_size < 200_000
    with peak_below(30):
        refused(path, "zip bomb")


def test_damaged_workbook(tmp_path: Path) -> None:
    good = io.BytesIO()
    pd.DataFrame({"a": range(100)}).to_excel(good, index=False)
    refused(write(tmp_path, "cut.xlsx", good.getvalue()[:700]), "damaged")


def test_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:  # a sparse 3 MB file: over a 1 MB cap
        f.write(b"a,b\n1,2\n")
        f.truncate(3 * 1024 * 1024)
    with peak_below(1):  # refused from the stat: not a byte read
        msg = refused(path, "over the size cap", "TASKWRIGHT_MAX_FILE_MB", max_bytes=max_bytes_for(1))
    assert "3.0 MB" in msg and "limit is 1 MB" in msg


# ---------------------------------------------------------------- declared sizes and downloads (Slack)


class _Downloads(BaseHTTPRequestHandler):
    """A loopback stand-in for Slack's file host: /chunked streams without Content-Length, /login is HTML."""

    body = b"a,b\n" + b"1,2\n" * 400_000  # 1.6 MB

    def do_GET(self) -> None:
        if self.path == "/login":
            page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(self.body), 65536):
            part = self.body[i:i + 65536]
            try:
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading at the cap
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def file_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Downloads)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_declared_size_over_the_cap_never_asks_slack(tmp_path: Path) -> None:
    asked: list[str] = []
    fetcher = SlackFiles("xoxb-test", lambda fid: asked.append(fid) or {})  # type: ignore[func-returns-value]
    ref = FileRef(id="F0000000001", name="big.csv", url="http://127.0.0.1:9/never", size=300 * 1024 * 1024)
    with pytest.raises(FileFetchError, match=r"300 MB, over the size cap: the limit is 200 MB"):
        fetcher.fetch(ref, tmp_path, max_bytes=max_bytes_for(200))
    assert asked == [] and not any(tmp_path.iterdir())


def test_size_from_files_info_over_the_cap_is_refused_before_the_download(tmp_path: Path) -> None:
    fetcher = SlackFiles("xoxb-test", lambda fid: {"name": "stub.csv", "size": 5 * 1024 * 1024,
                                                   "url_private_download": "http://127.0.0.1:9/never"})
    with pytest.raises(FileFetchError, match=r"stub.csv.*5 MB.*limit is 1 MB"):
        fetcher.fetch(FileRef(id="F0000000002", name="stub.csv"), tmp_path, max_bytes=max_bytes_for(1))
    assert not any(tmp_path.iterdir())


def test_stream_without_length_is_cut_off_at_the_cap(tmp_path: Path, file_host: str) -> None:
    fetcher = SlackFiles("xoxb-test", lambda fid: {})
    ref = FileRef(id="F0000000003", name="liar.csv", url=f"{file_host}/chunked", size=1000)
    with pytest.raises(FileFetchError, match=r"more than 1\.\d+ MB, over the size cap: the limit is 1 MB"):
        fetcher.fetch(ref, tmp_path, max_bytes=max_bytes_for(1))
    assert not any(tmp_path.iterdir())  # no partial file left behind
    ok = fetcher.fetch(ref, tmp_path, max_bytes=max_bytes_for(2))  # under a 2 MB cap it arrives whole
    assert ok.read_bytes() == _Downloads.body


def test_login_page_instead_of_the_file_names_the_scope(tmp_path: Path, file_host: str) -> None:
    fetcher = SlackFiles("xoxb-test", lambda fid: {})
    ref = FileRef(id="F0000000004", name="q4.csv", url=f"{file_host}/login", size=100, mimetype="text/csv")
    with pytest.raises(FileFetchError, match="files:read"):
        fetcher.fetch(ref, tmp_path, max_bytes=max_bytes_for(1))
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------- awkward, but summarized


def test_ragged_rows(tmp_path: Path) -> None:
    text = "region,sales,units\nNorth,10,1\nSouth,20\nEast,30,3,extra,fields\nWest,40,4\n"
    t = load_table(write(tmp_path, "ragged.csv", text))
    assert t.df["region"].tolist() == ["North", "South", "West"]  # the over-long row is skipped, with a note
    assert t.df["sales"].sum() == 70 and t.df["units"].isna().sum() == 1
    assert any("1 row(s) with more fields" in n for n in t.notes)


def test_gbk_without_declaration(tmp_path: Path) -> None:
    rows = ["地区,产品,销售额"] + [f"{r},{p},{v}" for r, p, v in
                                   zip(["华北", "华南", "华东", "西南"] * 25, ["绿茶", "咖啡"] * 50, range(100))]
    t = load_table(write(tmp_path, "销售.csv", "\n".join(rows), encoding="gbk"))
    assert list(t.df.columns) == ["地区", "产品", "销售额"]
    assert t.df["销售额"].sum() == 4950 and t.df["地区"].value_counts()["华东"] == 25
    assert any("GBK" in n for n in t.notes)


def test_formula_cells_stay_text_and_are_escaped_in_every_export(tmp_path: Path) -> None:
    cells = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1:A9)", "=cmd|' /C calc'!A0",
             "\t=1", "plain"]
    df = pd.DataFrame({"=name": cells * 10, "+amount": range(70), "@note": ["-A1"] * 70})
    t = load_table(write(tmp_path, "formulas.csv", df.to_csv(index=False)))
    assert t.df["=name"].tolist()[:7] == cells  # data stays data: nothing stripped or evaluated
    assert any("start with = + - or @" in n for n in t.notes)
    s = summarize_table(t, out_dir=tmp_path / "out")
    # the exports we write: the per-column profile CSV (the only CSV/Excel we produce for a table)
    assert s.export is not None
    exported = export_cells(s.export)
    assert "'=name" in exported and "'+amount" in exported
    for cell in exported:
        assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        assert not (cell.startswith("-") and not cell.replace(".", "", 1).lstrip("-").isdigit()), cell
    assert s.profile.column("+amount").stats["mean"] == 34.5


def test_ten_thousand_columns(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(10_000))
    body = "\n".join(",".join(str((r * 7 + i) % 10) for i in range(10_000)) for r in range(20))
    path = write(tmp_path, "wide.csv", header + "\n" + body + "\n")
    with peak_below(400):
        t = load_table(path)
        p = profile(t.df)
    assert t.df.shape == (20, 10_000)
    assert p.profiled_columns == MAX_PROFILED_COLUMNS and p.columns == 10_000
    assert p.column("c3").stats["mean"] == pytest.approx(np.mean([(r * 7 + 3) % 10 for r in range(20)]))
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert f"Profiled columns: the first {MAX_PROFILED_COLUMNS} of 10,000" in s.facts


def test_one_column(tmp_path: Path) -> None:
    # 1, 2, 3... would look like a row number; named "amount" it is a measure
    t = load_table(write(tmp_path, "one.csv", "amount\n" + "\n".join(str(i) for i in range(1, 101)) + "\n"))
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert s.facts[:2] == ["Rows: 100", "Columns: 1 (1 numeric)"]
    assert any(f.startswith("amount: mean 50.50, median 50.50, min 1, max 100") for f in s.facts)
    assert s.charts


def test_one_column_of_words(tmp_path: Path) -> None:
    t = load_table(write(tmp_path, "words.txt", "fruit\n" + "\n".join(["apple", "pear", "fig"] * 30) + "\n"))
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert "fruit: 3 distinct; most common apple (30 rows, 33.33%)" in s.facts


def test_all_missing_column(tmp_path: Path) -> None:
    text = "id,empty,v\n" + "\n".join(f"{i},,{i * 2}" for i in range(50)) + "\n"
    t = load_table(write(tmp_path, "gaps.csv", text))
    s = summarize_table(t, out_dir=tmp_path / "out")
    empty = s.profile.column("empty")
    assert (empty.kind, empty.missing, empty.count) == ("empty", 50, 0)
    assert "empty: 50 missing (100.00%)" in s.facts
    assert s.profile.missing_cells == 50


def test_mixed_types_in_one_column(tmp_path: Path) -> None:
    vals = ["12", "n/a", "7.5", "pending", "3", "none yet", "40", "1", "x", "2"]
    t = load_table(write(tmp_path, "mixed.csv", "k,val\n" + "\n".join(f"{i},{v}" for i, v in enumerate(vals))))
    assert t.df["val"].tolist() == [v if v != "n/a" else None for v in vals] or t.df["val"].dtype != float
    assert any("val: mixed values" in n for n in t.notes)
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert s.profile.column("val").kind in ("categorical", "text")


def test_three_date_formats_in_one_column(tmp_path: Path) -> None:
    days = ["2026-03-01", "2026/03/02", "2026年3月3日"] * 10
    t = load_table(write(tmp_path, "dates.csv", "day,n\n" + "\n".join(f"{d},{i}" for i, d in enumerate(days))))
    assert t.df["day"].dt.strftime("%Y-%m-%d").tolist()[:3] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert any("day: read as dates (3 formats" in n for n in t.notes)
    assert profile(t.df).column("day").first == "2026-03-01"


def test_duplicate_headers_three_times(tmp_path: Path) -> None:
    t = load_table(write(tmp_path, "dups.csv", "x,x,x,y\n1,2,3,a\n4,5,6,b\n7,8,9,a\n"))
    assert list(t.df.columns) == ["x", "x_2", "x_3", "y"]
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert s.profile.column("x_3").stats["mean"] == 6.0


def test_chinese_headers_summary_and_charts(tmp_path: Path) -> None:
    rows = ["日期,地区,销售额"] + [f"2026-{1 + i % 6:02d}-{1 + i % 28:02d},{['北京', '上海', '广州'][i % 3]},{100 + i}"
                                   for i in range(120)]
    t = load_table(write(tmp_path, "中文.csv", "\n".join(rows)))
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert f"销售额: mean {np.mean([100 + i for i in range(120)]):,.2f}" in "\n".join(s.facts)
    assert any(f.startswith("地区: 3 distinct") for f in s.facts)
    assert 2 <= len(s.charts) <= 4 and all(p.stat().st_size > 1000 for p in s.charts)


def test_one_megabyte_cell(tmp_path: Path) -> None:
    big = "lorem ipsum " * 90_000  # 1.08 MB in one quoted cell
    path = write(tmp_path, "bigcell.csv", f'id,note,v\n1,"{big}",5\n2,short,7\n3,"a, b",9\n')
    with peak_below(150):
        t = load_table(path)
        s = summarize_table(t, out_dir=tmp_path / "out")
    assert len(t.df.at[0, "note"]) == len(big) and t.df["v"].sum() == 21
    note = s.profile.column("note")
    assert note.distinct == 3 and all(len(v) <= 80 for v, _ in note.top)  # shown values are cut to 80 chars
    assert all(len(f) < 300 for f in s.facts)


# ------------------------------------------------------------------------------------- §2 real-world


def test_utf8_bom(tmp_path: Path) -> None:
    t = load_table(write(tmp_path, "bom.csv", "\ufeffname,score\nA,1\nB,2\nC,4\n"))
    assert list(t.df.columns) == ["name", "score"] and t.df["score"].sum() == 7
    assert "encoding: UTF-8 with BOM" in t.notes


def test_latin1_with_numbers(tmp_path: Path) -> None:
    text = "ville;prix;quantité\nSète;12,50;3\nNîmes;1.234,75;1\nOrléans;0,99;10\n"
    t = load_table(write(tmp_path, "ventes.csv", text, encoding="latin-1"))
    assert list(t.df.columns) == ["ville", "prix", "quantité"]
    assert t.df["ville"].tolist() == ["Sète", "Nîmes", "Orléans"]
    assert t.df["prix"].tolist() == [12.5, 1234.75, 0.99]
    assert any("encoding" in n for n in t.notes) and any("decimal comma" in n for n in t.notes)


def test_decimal_comma_in_quoted_comma_separated_file(tmp_path: Path) -> None:
    t = load_table(write(tmp_path, "eu.csv", 'item,price\na,"1.234,5"\nb,"2.000,25"\nc,"3,5"\n'))
    assert t.df["price"].tolist() == [1234.5, 2000.25, 3.5]


def test_percent_and_currency_strings(tmp_path: Path) -> None:
    text = ("product,margin,price,price_cny\n"
            'a,12.5%,"$1,200.00",¥88\n'
            'b,-3%,$15.5,"1,234元"\n'
            "c,40%,(20.00),¥0.5\n")
    t = load_table(write(tmp_path, "money.csv", text))
    assert t.df["margin"].tolist() == [12.5, -3.0, 40.0]
    assert t.df["price"].tolist() == [1200.0, 15.5, -20.0]
    assert t.df["price_cny"].tolist() == [88.0, 1234.0, 0.5]
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert s.profile.column("price").stats["mean"] == pytest.approx((1200 - 20 + 15.5) / 3)


def test_chinese_dates_make_a_monthly_trend(tmp_path: Path) -> None:
    rows = ["日期,销售额"] + [f"2026年{m}月{d}日,{m * 10 + d}" for m in (1, 2, 3, 4, 5) for d in (1, 15)]
    t = load_table(write(tmp_path, "月度.csv", "\n".join(rows)))
    p = profile(t.df)
    assert p.trend is not None and p.trend["periods"] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    assert p.trend["totals"] == [m * 20 + 16 for m in (1, 2, 3, 4, 5)]


def test_header_row_not_on_line_one_in_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    body = pd.DataFrame([["Sales report", None, None], ["exported 2026-03-01", None, None],
                         ["region", "sales", "units"], ["N", 10, 1], ["S", 20, 2], ["E", 30, 3]])
    body.to_excel(path, index=False, header=False)
    t = load_table(path)
    assert list(t.df.columns) == ["region", "sales", "units"] and t.df["sales"].sum() == 60
    assert any("header on row 3" in n for n in t.notes)


def test_multi_sheet_workbook_with_formulas_and_an_empty_sheet(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xw:
        pd.DataFrame().to_excel(xw, sheet_name="Blank", index=False)
        pd.DataFrame({"region": list("NSEW") * 5, "sales": range(20),
                      "check": ["=SUM(B2:B3)"] * 20}).to_excel(xw, sheet_name="Data", index=False)
        pd.DataFrame({"note": ["see Data"]}).to_excel(xw, sheet_name="Readme", index=False)
    t = load_table(path)
    assert t.sheet == "Data" and t.other_sheets == ["Blank", "Readme"] and t.df["sales"].sum() == 190
    # formulas Excel never calculated have no saved value: they read as empty (never as formula text)
    assert t.df["check"].isna().all()
    s = summarize_table(t, out_dir=tmp_path / "out")
    assert s.profile.column("check").kind == "empty" and "check: 20 missing (100.00%)" in s.facts
    refused(path, "empty", sheet="Blank")


def test_utf16_export(tmp_path: Path) -> None:
    t = load_table(write(tmp_path, "u16.csv", "a\tb\n1\tx\n2\ty\n", encoding="utf-16"))
    assert list(t.df.columns) == ["a", "b"] and t.df["a"].sum() == 3


@pytest.mark.slow  # builds a 40 MB file: a few seconds on 2 cores
def test_big_file_memory_stays_bounded(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 400_000
    df = pd.DataFrame({"region": rng.choice(["N", "S", "E", "W"], n), "amount": rng.normal(100, 20, n).round(2),
                       "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
                       "note": rng.choice(["ok", "late", "broken box", "gift"], n)})
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    size_mb = path.stat().st_size / 1e6
    with peak_below(12 * size_mb):
        t = load_table(path)
        p = profile(t.df)
    assert p.rows == n and p.column("amount").stats["mean"] == pytest.approx(df["amount"].mean(), rel=1e-12)
