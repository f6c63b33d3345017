"""Turn an uploaded file (bytes or a path) into a clean DataFrame, or a TableError that says why not.

Real uploads are messy: Excel exports in GBK, ';'-separated files with decimal commas, title rows above the
header, an HTML login page saved as .csv, a zip bomb renamed .xlsx. Every check that can refuse a file runs on
the raw bytes *before* a parser sees them, so a hostile file costs a stat and a few kilobytes, never memory.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import TaskwrightError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: a workbook whose XML unpacks to more than this is refused before openpyxl opens it (zip bombs)
MAX_UNZIPPED_BYTES = 400 * 1024 * 1024
#: ...and so is one whose members unpack more than this many times their packed size
MAX_ZIP_RATIO = 200
SNIFF_CHARS = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class TableError(TaskwrightError, ValueError):
    """A file that cannot become a table; `user_message` says what is wrong and what to do."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass
class LoadedTable:
    """A parsed table plus what the loader decided on the way (shown to the user as notes)."""

    df: pd.DataFrame
    name: str
    sheet: str | None = None
    other_sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    file_format: str = "csv"


def load_table(source: str | Path | bytes, name: str = "", *, max_bytes: int | None = None,
               sheet: str | None = None) -> LoadedTable:
    """Load CSV/TSV/XLSX/XLS/JSON/JSONL/Parquet from a path or bytes; raises TableError with a clear message."""
    cap = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        name = name or "upload"
        if len(raw) > cap:
            raise TableError(_too_big(name, len(raw), cap))
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise TableError(_not_a_file(path, name))
        try:
            size = path.stat().st_size
            if size > cap:  # checked before a byte is read
                raise TableError(_too_big(name, size, cap))
            raw = path.read_bytes()
        except OSError as e:  # no read permission, an I/O error, a file removed meanwhile
            log.info("table unreadable name=%s path=%s err=%r", name, path, e)
            raise TableError(f"{name}: I can't read this file ({e.strerror or type(e).__name__}).") from None
    try:
        table = _load_bytes(raw, name, sheet)
    except TableError as e:
        log.info("table refused name=%s bytes=%d reason=%s", name, len(raw), e.user_message)
        raise
    except (MemoryError, RecursionError) as e:
        log.warning("table too large to parse name=%s bytes=%d err=%r", name, len(raw), e)
        raise TableError(f"{name} is too large or too deeply nested to load here.") from None
    table.df = _finish(table.df, table.notes)
    log.info("table loaded name=%s format=%s rows=%d cols=%d notes=%d", name, table.file_format,
             len(table.df), table.df.shape[1], len(table.notes))
    return table


def _not_a_file(path: Path, name: str) -> str:
    """Why a path that is not a regular file cannot be read (a device or pipe would block or never end)."""
    if path.is_dir():
        reason = f"{name} is a folder, not a file."
    elif path.is_symlink() and not path.exists():
        reason = f"{name} is a broken link (or a link loop)."
    elif path.exists():
        reason = f"{name} is not a regular file (a device, pipe or socket); save the table to a file first."
    else:
        reason = f"{name}: no such file."
    log.info("table refused path=%s reason=%s", path, reason)
    return reason


def _too_big(name: str, size: int, cap: int) -> str:
    mib = 1024 * 1024  # the unit of TASKWRIGHT_MAX_FILE_MB (bot/files.py uses the same)
    return (f"{name} is {size / mib:.1f} MB, over the size cap: the limit is {cap / mib:g} MB "
            f"(setting TASKWRIGHT_MAX_FILE_MB). Share a smaller extract.")


# ----------------------------------------------------------------------------------------------- sniffing


def _load_bytes(raw: bytes, name: str, sheet: str | None) -> LoadedTable:
    if not raw or raw.isspace():  # isspace stops at the first other byte; strip() would copy the file
        raise TableError(f"{name} is empty: there is no data to summarize.")
    head = raw[:4096]
    if head.startswith(b"PK\x03\x04"):
        return _load_xlsx(raw, name, sheet)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _load_xls(raw, name, sheet)
    if head.startswith(b"PAR1"):
        return _load_parquet(raw, name)
    if head[:2] in (b"\x1f\x8b",) or head.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"7z\xbc\xaf",
                                                       b"Rar!")):
        raise TableError(f"{name} is not a table (it looks like a compressed archive, PDF or image). "
                         "Upload a CSV, TSV, Excel, JSON or Parquet file.")
    text, enc_note, codec = _decode(raw, name)
    stripped = text.lstrip("\ufeff \t\r\n")[:512].lower()
    if stripped.startswith(("<!doctype html", "<html", "<head", "<body")) or (
            stripped.startswith("<") and "<html" in text[:4096].lower()):
        raise TableError(
            f"{name} looks like a web page, not a data file. If it came from Slack, that is Slack's login page: "
            "the bot is missing the files:read scope (add it under OAuth & Permissions and reinstall the app).")
    notes = [enc_note] if enc_note else []
    if stripped.startswith(("{", "[")):
        table = _load_json(text, name)
        table.notes[:0] = notes
        return table
    complete = len(text) <= SNIFF_CHARS
    head = text[: SNIFF_CHARS + 1]
    del text  # pandas parses the bytes (codec below): a decoded copy in a StringIO costs 4 bytes a character
    return _load_csv(head, name, notes, complete=complete, source=(raw, *codec))


def _decode(raw: bytes, name: str) -> tuple[str, str, tuple[str, str]]:
    """Bytes to text: BOMs, UTF-8, then charset-normalizer's guess (GBK, Latin-1...), then Latin-1.

    Returns (text, note for the user, (codec, errors)) where the codec decodes `raw` to exactly `text`.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace"), "encoding: UTF-16", ("utf-16", "replace")
    sample = raw[:1_000_000]
    if b"\x00" in sample[:8192]:
        raise TableError(f"{name} is a binary file, not text: upload a CSV, TSV, Excel, JSON or Parquet file.")
    if _bad_control_ratio(sample) > 0.05:
        raise TableError(f"{name} is a binary file, not text: upload a CSV, TSV, Excel, JSON or Parquet file.")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "encoding: UTF-8 with BOM", ("utf-8-sig", "replace")
    try:
        return raw.decode("utf-8"), "", ("utf-8", "strict")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample[:200_000]).best()
    enc = best.encoding if best is not None else "latin-1"
    if enc.lower().replace("_", "") in ("gb2312", "gbk", "gb18030", "hz"):
        enc = "gb18030"  # the superset: GBK files with rarer characters still decode
    errors = "strict"
    try:
        text = raw.decode(enc)
    except (UnicodeDecodeError, LookupError):
        enc = "gb18030" if _strict_ok(raw, "gb18030") else "cp1252" if _strict_ok(raw, "cp1252") else "latin-1"
        errors = "replace"
        text = raw.decode(enc, errors=errors)
    label = {"gb18030": "GBK/GB18030", "cp1252": "Windows-1252", "latin_1": "Latin-1"}.get(enc, enc)
    return text, f"encoding: {label} (no UTF-8)", (enc, errors)


def _strict_ok(raw: bytes, enc: str) -> bool:
    try:
        raw.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


def _bad_control_ratio(sample: bytes) -> float:
    """Share of C0 control bytes other than tab/CR/LF: text files have none, binaries plenty."""
    if not sample:
        return 0.0
    arr = np.frombuffer(sample[:65536], dtype=np.uint8)
    bad = (arr < 32) & (arr != 9) & (arr != 10) & (arr != 13) & (arr != 12)
    return float(bad.mean())


# --------------------------------------------------------------------------------------------------- CSV


def _load_csv(text: str, name: str, notes: list[str], *, complete: bool | None = None,
              source: tuple[bytes, str, str] | None = None) -> LoadedTable:
    """Parse delimited text. `text` may be only the head of the file (for sniffing) when `source` gives the
    whole file as (bytes, codec, errors): pandas then decodes the bytes itself, which needs far less memory."""
    sample = text[:SNIFF_CHARS]
    delim = _sniff_delimiter(sample)
    rows = _sample_rows(sample, delim, complete=len(text) <= SNIFF_CHARS if complete is None else complete)
    if not rows:
        raise TableError(f"{name} has no rows.")
    hdr = _header_index(rows)
    header = rows[hdr]
    names, renamed = _clean_names(header)
    if delim != ",":
        notes.append(f"delimiter: {'tab' if delim == chr(9) else repr(delim)}")
    if hdr:
        notes.append(f"header on line {hdr + 1}; {hdr} line(s) above it skipped")
    notes.extend(renamed)
    decimal = "."
    if delim == ";" and re.search(r"(^|;)\s*\"?-?\d{1,3}(\.\d{3})*,\d+\"?\s*(;|$)", sample, re.M):
        decimal = ","
        notes.append("numbers use a decimal comma (1.234,5)")
    kw = dict(sep=delim, header=None, names=names, skiprows=_skip_lines(sample, delim, hdr), skip_blank_lines=True,
              decimal=decimal, thousands="." if decimal == "," else None, low_memory=False,
              keep_default_na=True)
    if source is not None:
        raw, codec, errors = source
        kw.update(encoding=codec, encoding_errors=errors)

    def _input() -> io.IOBase:
        return io.BytesIO(raw) if source is not None else io.StringIO(text)

    try:
        df = pd.read_csv(_input(), **kw)
    except pd.errors.ParserError as e:
        if "Expected" not in str(e):
            raise TableError(f"{name} could not be parsed as CSV: {str(e)[:200]}") from None
        bad: list[int] = []

        def _keep_short(line: list[str]) -> list[str] | None:
            bad.append(1)
            return None

        df = pd.read_csv(_input(), engine="python", on_bad_lines=_keep_short,
                         **{k: v for k, v in kw.items() if k != "low_memory"})
        notes.append(f"{len(bad)} row(s) with more fields than the header ({len(names)}) were skipped")
    except (csv.Error, ValueError) as e:
        raise TableError(f"{name} could not be parsed as CSV: {str(e)[:200]}") from None
    if df.empty and len(df.columns):
        raise TableError(f"{name} has a header ({', '.join(map(str, df.columns[:8]))}) but no data rows.")
    return LoadedTable(df=df, name=name, notes=notes, file_format="tsv" if delim == "\t" else "csv")


def _skip_lines(sample: str, delim: str, hdr: int) -> int:
    """Physical lines up to and including the header (blank lines and quoted newlines count as lines)."""
    reader = csv.reader(io.StringIO(sample), delimiter=delim)
    seen = -1
    for r in reader:
        if r and any(c.strip() for c in r):
            seen += 1
            if seen == hdr:
                return reader.line_num
    return hdr + 1


def _sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's lines into the same number (>1) of fields most consistently."""
    best, best_score = ",", (-1.0, 0)
    for d in DELIMITERS:
        counts = [len(r) for r in _sample_rows(sample, d, complete=False)[:200] if any(c.strip() for c in r)]
        if not counts:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        score = (freq / len(counts), mode)
        if score > best_score:
            best, best_score = d, score
    return best


def _sample_rows(sample: str, delim: str, complete: bool) -> list[list[str]]:
    rows: list[list[str]] = []
    try:
        for r in csv.reader(io.StringIO(sample), delimiter=delim):
            if r and any(c.strip() for c in r):
                rows.append(r)
    except csv.Error:
        pass
    if not complete and len(rows) > 1:
        rows.pop()  # the sample may cut the last record in half
    return rows


def _header_index(rows: list[list[str]]) -> int:
    """Skip title/comment lines: the header is the first row as wide as the data rows below it."""
    widths = [len(r) for r in rows[:50]]
    width = Counter(widths[1:] or widths).most_common(1)[0][0]
    # a workbook's rows all have the sheet's width: a title row shows as one filled cell among empty ones
    filled_width = Counter(sum(1 for c in r if c.strip()) for r in (rows[1:50] or rows)).most_common(1)[0][0]
    for i, r in enumerate(rows[:20]):
        filled = [c for c in r if c.strip()]
        if r and r[0].lstrip().startswith("#") and len(filled) <= 1:
            continue
        if len(filled) <= 1 < filled_width and i + 1 < len(rows):
            continue
        if len(r) >= width or len(filled) >= max(2, width // 2):
            return i
    return 0


def _clean_names(header: list[object]) -> tuple[list[str], list[str]]:
    """Strip names, name empty ones after their position, suffix duplicates; return (names, notes)."""
    names: list[str] = []
    notes: list[str] = []
    seen: Counter[str] = Counter()
    for i, h in enumerate(header):
        n = "" if h is None or (isinstance(h, float) and np.isnan(h)) else str(h).strip().replace("\ufeff", "")
        if len(n) > 120:
            n = n[:120]
        if not n or n.lower().startswith("unnamed:"):
            n = f"column_{i + 1}"
            notes.append(f"column {i + 1} had no header; named {n}")
        base = n
        seen[base] += 1
        if seen[base] > 1:
            n = f"{base}_{seen[base]}"
            while n in seen:
                seen[base] += 1
                n = f"{base}_{seen[base]}"
            notes.append(f"duplicate header {base!r}; column {i + 1} renamed {n}")
            seen[n] += 1
        names.append(n)
    return names, notes


# ----------------------------------------------------------------------------------------- Excel / Parquet


def _load_xlsx(raw: bytes, name: str, sheet: str | None) -> LoadedTable:
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise TableError(f"{name} is a damaged zip/Excel file ({e}).") from None
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        raise TableError(f"{name} is a zip archive, not an Excel workbook: unzip it and upload the table inside.")
    total = sum(i.file_size for i in infos)
    for i in infos:
        if i.file_size > MAX_UNZIPPED_BYTES or (i.file_size > 20_000_000
                                                and i.file_size > MAX_ZIP_RATIO * max(i.compress_size, 1)):
            raise TableError(f"{name} unpacks to {i.file_size / 1e6:.0f} MB from {len(raw) / 1e6:.1f} MB "
                             "(a zip bomb or an extreme workbook); refused.")
    if total > MAX_UNZIPPED_BYTES:
        raise TableError(f"{name} unpacks to {total / 1e6:.0f} MB, over the {MAX_UNZIPPED_BYTES / 1e6:.0f} MB "
                         "limit for workbooks; refused.")
    return _load_excel(raw, name, sheet, "openpyxl")


def _load_xls(raw: bytes, name: str, sheet: str | None) -> LoadedTable:
    return _load_excel(raw, name, sheet, "xlrd")


def _load_excel(raw: bytes, name: str, sheet: str | None, engine: str) -> LoadedTable:
    try:
        sheets = pd.read_excel(io.BytesIO(raw), sheet_name=None, header=None, engine=engine, dtype=object)
    except Exception as e:  # openpyxl/xlrd raise many types on damaged files
        log.warning("excel parse failed name=%s engine=%s err=%r", name, engine, e)
        raise TableError(f"{name} could not be read as an Excel workbook ({type(e).__name__}: {str(e)[:150]}).") \
            from None
    if not sheets:
        raise TableError(f"{name} has no sheets.")
    if sheet is not None:
        if sheet not in sheets:
            raise TableError(f"{name} has no sheet {sheet!r}; sheets: {', '.join(sheets)}.")
        chosen = sheet
    else:
        chosen = max(sheets, key=lambda s: sheets[s].dropna(how="all").size)
    raw_df = sheets[chosen].dropna(how="all").dropna(axis=1, how="all")
    others = [s for s in sheets if s != chosen]
    notes = []
    if others:
        notes.append(f"sheet {chosen!r} used ({'chosen' if sheet else 'the largest'}); "
                     f"other sheets: {', '.join(others)}")
    if raw_df.empty:
        raise TableError(f"{name}: sheet {chosen!r} is empty.")
    rows = [[("" if pd.isna(v) else str(v)) for v in r] for r in raw_df.head(50).itertuples(index=False)]
    hdr = _header_index(rows)
    names, renamed = _clean_names(list(raw_df.iloc[hdr]))
    notes.extend(renamed)
    if hdr:
        notes.append(f"header on row {hdr + 1}; {hdr} row(s) above it skipped")
    df = raw_df.iloc[hdr + 1:].reset_index(drop=True)
    df.columns = names
    if df.empty:
        raise TableError(f"{name}: sheet {chosen!r} has a header but no data rows.")
    df = df.infer_objects()
    return LoadedTable(df=df, name=name, sheet=str(chosen), other_sheets=[str(s) for s in others], notes=notes,
                       file_format="xlsx" if engine == "openpyxl" else "xls")


def _load_parquet(raw: bytes, name: str) -> LoadedTable:
    try:
        df = pd.read_parquet(io.BytesIO(raw))
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError on damaged files
        raise TableError(f"{name} is a damaged Parquet file ({str(e)[:150]}).") from None
    return LoadedTable(df=df, name=name, file_format="parquet")


# -------------------------------------------------------------------------------------------------- JSON


def _load_json(text: str, name: str) -> LoadedTable:
    notes: list[str] = []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
        records = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TableError(f"{name} is not valid JSON or JSON Lines (line {i}: {e.msg}).") from None
        data = records
        notes.append("format: JSON Lines")
    if isinstance(data, dict):
        lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if lists:
            key = max(lists, key=lambda k: len(data[k]))
            notes.append(f"records taken from the {key!r} key")
            data = data[key]
        elif all(isinstance(v, list) for v in data.values()):
            try:
                return LoadedTable(df=pd.DataFrame(data), name=name, notes=notes, file_format="json")
            except ValueError as e:
                raise TableError(f"{name}: the JSON columns have different lengths ({e}).") from None
        else:
            data = [data]
    if not isinstance(data, list) or not data:
        raise TableError(f"{name} holds no records (expected a list of objects).")
    if all(isinstance(r, dict) for r in data):
        df = pd.json_normalize(data, max_level=1)
    elif all(isinstance(r, list) for r in data):
        names, renamed = _clean_names(data[0])
        notes.extend(renamed)
        df = pd.DataFrame(data[1:], columns=names) if all(len(r) == len(names) for r in data[1:]) else \
            pd.DataFrame([r[:len(names)] + [None] * (len(names) - len(r)) for r in data[1:]], columns=names)
    else:
        df = pd.DataFrame({"value": data})
    for c in df.columns:  # nested lists/dicts become text so counting and hashing work
        if df[c].dtype == object and df[c].map(lambda v: isinstance(v, (list, dict))).any():
            df[c] = df[c].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    return LoadedTable(df=df, name=name, notes=notes, file_format="json")


# ------------------------------------------------------------------------------------- column conversion

_NUM_CLEAN = re.compile(r"^\s*\(?\s*[-+]?\s*[$€£¥₹]?\s*[-+]?\d[\d,.\s' ]*\s*(%|[$€£¥₹]|元|USD|EUR|CNY|RMB)?\s*\)?\s*$",
                        re.I)
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{4}年\d{1,2}月(\d{1,2}日)?"
    r"|\d{1,2}[ -][A-Za-z]{3,9}[ -,]+\d{4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4}"
    r"|\d{4}-\d{2})\s*$")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y",
                "%Y年%m月%d日", "%Y年%m月", "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y",
                "%Y-%m")
TRUE_WORDS = {"true", "yes", "y", "t", "是"}
FALSE_WORDS = {"false", "no", "n", "f", "否"}
CONVERT_SHARE = 0.95


def _finish(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Common clean-up for every format: string names, and text columns that hold numbers/dates converted."""
    if not all(isinstance(c, str) for c in df.columns) or len(set(df.columns)) != len(df.columns):
        names, renamed = _clean_names(list(df.columns))
        notes.extend(renamed)
        df.columns = names
    if df.shape[1] == 0 or len(df) == 0:
        raise TableError("The file has no data rows." if df.shape[1] else "The file has no columns.")
    formula_cells = 0
    converted: dict[str, pd.Series] = {}
    for col in df.columns[:2000]:  # wide tables: convert the first 2000 columns, profile fewer anyway
        s = df[col]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        new, note = convert_text_column(s, str(col))
        if note:
            notes.append(note)
        if new is not s:
            converted[col] = new
        elif new.dtype != bool:
            formula_cells += _count_formula_like(s)
    if converted:
        df = df.assign(**converted)
    if formula_cells:
        notes.append(f"{formula_cells} cell(s) start with = + - or @; kept as text, escaped in exports")
    return df


def _count_formula_like(s: pd.Series) -> int:
    sample = s.dropna()
    if len(sample) > 200_000:
        sample = sample.iloc[:200_000]
    st = sample.astype(str)
    starts = st.str.startswith(("=", "+", "@", "-"))  # vectorized; the regex below only sees those cells
    if not starts.any():
        return 0
    st = st[starts]
    minus_number = st.str.fullmatch(r"-\s*[\d.,]+")
    return int(len(st) - minus_number.sum())


def convert_text_column(s: pd.Series, name: str) -> tuple[pd.Series, str]:
    """Numbers with separators/percent/currency, dates and yes/no text become typed; else `s` unchanged."""
    values = s.dropna()
    if values.empty:
        return s, ""
    values = values.astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return s, ""
    sample = values.iloc[:: max(1, len(values) // 2000)][:2000]
    if sample.str.len().max() > 64:
        return s, ""
    lowered = sample.str.lower()
    if lowered.isin(TRUE_WORDS | FALSE_WORDS).all() and lowered.nunique() == 2:
        full = s.astype("string").str.strip().str.lower()
        is_true, is_false = full.isin(TRUE_WORDS).to_numpy(bool), full.isin(FALSE_WORDS).to_numpy(bool)
        out = pd.Series(pd.array(is_true, dtype="boolean"), index=s.index, name=s.name)
        out[~(is_true | is_false)] = pd.NA
        return out, f"{name}: yes/no values read as boolean"
    num_share = sample.str.match(_NUM_CLEAN).mean()
    if num_share >= CONVERT_SHARE and sample.str.contains(r"\d").all():
        parsed, how = parse_numbers(s)
        ok = parsed.notna().sum() / max(1, len(values))
        if ok >= CONVERT_SHARE:
            bad = len(values) - int(parsed.notna().sum())
            extra = f"; {bad} value(s) that are not numbers left empty" if bad else ""
            return parsed, f"{name}: read as numbers ({how}){extra}"
    elif 0.3 <= num_share < CONVERT_SHARE and len(values) >= 3:
        return s, f"{name}: mixed values ({num_share:.0%} numbers, the rest text); kept as text"
    date_share = sample.str.match(_DATE_LIKE).mean()
    if date_share >= 0.9:
        parsed, fmts = parse_dates(s)
        ok = parsed.notna().sum() / max(1, len(values))
        if ok >= 0.9:
            many = f" ({len(fmts)} formats: {', '.join(fmts)})" if len(fmts) > 1 else ""
            return parsed, f"{name}: read as dates{many}"
    return s, ""


def parse_numbers(s: pd.Series) -> tuple[pd.Series, str]:
    """'1,234.5', '1.234,5', '12%', '$1,200', '(30)' -> floats; returns (numbers, what was stripped)."""
    t = s.astype("string").str.strip()
    how = []
    if t.str.contains("%", regex=False).any():
        how.append("percent kept as 12 for 12%")
    if t.str.contains(r"[$€£¥₹元]|USD|EUR|CNY|RMB", regex=True).any():
        how.append("currency symbols removed")
    neg = t.str.match(r"^\(.*\)$").fillna(False)
    t = t.str.replace(r"[()$€£¥₹%元\s' ]|USD|EUR|CNY|RMB", "", regex=True, case=False)
    sample = t.dropna()
    sample = sample.iloc[:: max(1, len(sample) // 5000)]
    euro = bool(sample.str.contains(r"\d\.\d{3},\d*$|^-?\d+,\d{1,2}$|^-?\d+,\d{4,}$").any()) and not bool(
        sample.str.contains(r",\d{3}\.\d").any())
    if euro:
        t = t.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        how.append("decimal comma")
    elif t.str.contains(",", regex=False).any():
        t = t.str.replace(",", "", regex=False)
        how.append("thousands separators")
    out = pd.to_numeric(t, errors="coerce")
    out = out.where(~neg, -out)
    return out.astype("float64"), ", ".join(how) or "text digits"


def parse_dates(s: pd.Series) -> tuple[pd.Series, list[str]]:
    """Try each known format on what is still unparsed, so a column mixing three formats still parses."""
    t = s.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    used: list[str] = []
    iso = t.str.match(r"^\d{4}-\d{2}-\d{2}[ T]\d").fillna(False)
    if iso.any():
        parsed = pd.to_datetime(t[iso], format="ISO8601", errors="coerce", utc=True)
        out.loc[iso] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        used.append("ISO 8601 date-time")
    for fmt in DATE_FORMATS:
        todo = out.isna() & t.notna() & (t != "")
        if not todo.any():
            break
        parsed = pd.to_datetime(t[todo], format=fmt, errors="coerce")
        if parsed.notna().any():
            out.loc[parsed.index[parsed.notna()]] = parsed[parsed.notna()].astype("datetime64[ns]")
            used.append(fmt)
    return out, used
