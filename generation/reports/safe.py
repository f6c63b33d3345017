"""Exports that cannot smuggle spreadsheet formulas: cells starting with = + - @ tab or CR get a leading quote.

Uploaded data is untrusted. A cell like `=HYPERLINK(...)` is harmless in our DataFrame but becomes a live
formula the moment someone opens our CSV/Excel export in a spreadsheet (CSV injection), so every export
written by the reports package goes through `escape_cell`/`write_csv`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$")


def escape_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def write_csv(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
    """A UTF-8 (with BOM, so Excel shows non-ASCII text) CSV with every cell escaped."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow([escape_cell(h) for h in header])
        for row in rows:
            w.writerow([escape_cell(v) for v in row])
    return path
