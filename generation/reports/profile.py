"""Column-by-column statistics of a DataFrame, computed with pandas itself.

The numbers must equal what `DataFrame.describe()` says on the same data, so the numeric statistics *are*
`describe()` (one call over the numeric columns) rather than a re-implementation that could drift in ddof,
interpolation or NaN handling. Everything else (types, top values, trend, outliers) is derived from plain
pandas operations whose cost is linear in the rows; very wide tables are profiled on their first
`MAX_PROFILED_COLUMNS` columns and say so.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MAX_PROFILED_COLUMNS = 200
MAX_CORR_COLUMNS = 30
TOP_N = 5
IQR_K = 1.5
OUTLIER_METHOD = f"IQR rule: below Q1 - {IQR_K} x IQR or above Q3 + {IQR_K} x IQR"
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|key|code|no|number|sku|zip|postal code|zipcode|phone)$|^id[_\s-]|"
                      r"_id$|Id$|^(zip|postal)", re.I)
#: additive measures first: their per-period sum means something
MEASURE_WORDS = ("revenue", "sales", "amount", "total", "profit", "income", "cost", "volume", "quantity", "qty",
                 "price", "value", "wage", "salary")
DATE_PART_NAMES = {"year", "month", "day", "week", "quarter", "hour", "yr", "mon"}
#: the same measures in Chinese column names (matched as substrings: Chinese has no word breaks)
MEASURE_WORDS_ZH = {"营收": "revenue", "收入": "income", "销售额": "sales", "销量": "quantity", "销售": "sales",
                    "金额": "amount", "总额": "total", "合计": "total", "利润": "profit", "成本": "cost",
                    "费用": "cost", "数量": "quantity", "单价": "price", "价格": "price", "工资": "wage",
                    "薪资": "salary", "薪水": "salary"}


@dataclass
class ColumnProfile:
    """One column: its inferred type, counts and (by type) statistics, top values or date range."""

    name: str
    kind: str  # numeric | categorical | date | text | boolean | identifier | empty
    dtype: str
    count: int
    missing: int
    distinct: int
    stats: dict[str, float] = field(default_factory=dict)  # count mean std min 5% 25% 50% 75% 95% max
    top: list[tuple[str, int]] = field(default_factory=list)
    outliers: int | None = None
    first: str | None = None
    last: str | None = None


@dataclass
class Profile:
    """The whole table's statistics; `to_dict()` is JSON-able."""

    rows: int
    columns: int
    profiled_columns: int
    column_profiles: list[ColumnProfile]
    duplicate_rows: int
    missing_cells: int
    correlations: list[tuple[str, str, float]]
    trend: dict[str, Any] | None
    outlier_method: str = OUTLIER_METHOD

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.column_profiles if c.name == name)

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.column_profiles:
            out[c.kind] = out.get(c.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return _jsonable(d)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(v)
    return v


def profile(df: pd.DataFrame) -> Profile:
    """Statistics for every column (the first MAX_PROFILED_COLUMNS of a wide table) and the table."""
    cols = list(df.columns[:MAX_PROFILED_COLUMNS])
    sub = df[cols] if len(cols) < df.shape[1] else df
    n = len(df)
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(sub[c].dtype) and not pd.api.types.is_bool_dtype(
        sub[c].dtype)]
    described = sub[numeric].describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95]) if numeric else pd.DataFrame()
    missing = sub.isna().sum()
    profiles: list[ColumnProfile] = []
    for c in cols:
        s = sub[c]
        profiles.append(_column(c, s, n, int(missing[c]), described[c] if c in numeric else None))
    measures = [p.name for p in profiles if p.kind == "numeric"]
    return Profile(
        rows=n, columns=df.shape[1], profiled_columns=len(cols), column_profiles=profiles,
        duplicate_rows=_duplicates(df), missing_cells=int(df.isna().sum().sum()),
        correlations=_correlations(sub, measures), trend=_trend(sub, profiles), outlier_method=OUTLIER_METHOD)


def _column(name: str, s: pd.Series, n: int, missing: int, desc: pd.Series | None) -> ColumnProfile:
    count = n - missing
    try:
        distinct = int(s.nunique(dropna=True))
    except TypeError:  # unhashable cells
        s = s.astype(str)
        distinct = int(s.nunique(dropna=True))
    cp = ColumnProfile(name=str(name), kind="empty", dtype=str(s.dtype), count=count, missing=missing,
                       distinct=distinct)
    if count == 0:
        return cp
    if pd.api.types.is_bool_dtype(s.dtype):
        cp.kind = "boolean"
        cp.top = _top(s)
        return cp
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        cp.kind = "date"
        cp.first, cp.last = str(s.min().date()), str(s.max().date())
        return cp
    if desc is not None:
        cp.stats = {k: float(v) for k, v in desc.items()}
        if distinct <= 2 and set(s.dropna().unique().tolist()) <= {0, 1}:
            cp.kind = "boolean"
            cp.top = _top(s)
        elif pd.api.types.is_integer_dtype(s.dtype) and count > 20 and (_ID_NAME.search(str(name)) or (
                distinct == count and s.is_monotonic_increasing  # 1, 2, 3...: a row number, unless named a measure
                and measure_rank(str(name)) >= len(MEASURE_WORDS))):
            cp.kind = "identifier"
        else:
            cp.kind = "numeric"
            iqr = cp.stats["75%"] - cp.stats["25%"]
            lo, hi = cp.stats["25%"] - IQR_K * iqr, cp.stats["75%"] + IQR_K * iqr
            cp.outliers = int(((s < lo) | (s > hi)).sum())
        return cp
    text = s.dropna()
    if len(text) > 200_000:
        text = text.sample(200_000, random_state=0)
    lengths = text.astype(str).str.len()
    mean_len = float(lengths.mean())
    if distinct > 20 and (_ID_NAME.search(str(name)) or (distinct == count and mean_len < 40 and not text.astype(
            str).str.contains(" ", regex=False).any())):
        cp.kind = "identifier"
    elif (distinct <= 50 and (distinct <= 10 or distinct / count <= 0.5)) or (
            distinct <= 1000 and distinct / count <= 0.5 and mean_len < 40):
        cp.kind = "categorical"
        cp.top = _top(s)
    else:
        cp.kind = "text"
        cp.top = _top(s) if distinct < count else []
        cp.stats = {"mean length": mean_len, "max length": float(lengths.max())}
    return cp


def _top(s: pd.Series) -> list[tuple[str, int]]:
    vc = s.value_counts(dropna=True).head(TOP_N)
    return [(_short(k), int(v)) for k, v in vc.items()]


def _short(v: Any, limit: int = 80) -> str:
    t = str(v)
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _duplicates(df: pd.DataFrame) -> int:
    if df.shape[1] > MAX_PROFILED_COLUMNS * 5:
        df = df.iloc[:, : MAX_PROFILED_COLUMNS * 5]
    try:
        if len(df) > 50_000:
            # Hash each row once, then compare exactly only the rows whose hash repeats: the same count as
            # df.duplicated() (equal rows hash alike), at about a third of its cost on wide text tables.
            repeats = pd.util.hash_pandas_object(df, index=False).duplicated(keep=False).to_numpy()
            return int(df[repeats].duplicated().sum()) if repeats.any() else 0
        return int(df.duplicated().sum())
    except TypeError:
        return int(df.astype(str).duplicated().sum())


def _correlations(df: pd.DataFrame, measures: list[str]) -> list[tuple[str, str, float]]:
    """Pearson r between measure columns (pandas' `corr`), strongest first, top 5."""
    cols = measures[:MAX_CORR_COLUMNS]
    if len(cols) < 2:
        return []
    corr = df[cols].corr(method="pearson")
    pairs: list[tuple[str, str, float]] = []
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            r = corr.at[a, b]
            if pd.notna(r):
                pairs.append((a, b, float(r)))
    pairs.sort(key=lambda p: -abs(p[2]))
    return pairs[:5]


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower()) if t}


def is_time_part(name: str) -> bool:
    """A column named like a date or a part of one (year, month, date, timestamp...)."""
    return bool(_tokens(name) & (DATE_PART_NAMES | {"date", "time", "timestamp"}))


def measure_rank(name: str) -> int:
    """Position of the column's name among MEASURE_WORDS (lower is better); len(MEASURE_WORDS) if none."""
    toks = _tokens(name)
    toks |= {en for zh, en in MEASURE_WORDS_ZH.items() if zh in name}
    for i, w in enumerate(MEASURE_WORDS):
        if w in toks:
            return i
    return len(MEASURE_WORDS) + (1 if toks & DATE_PART_NAMES else 0)


def ranked_measures(profiles: list[ColumnProfile]) -> list[str]:
    """Numeric columns, business measures (revenue, sales...) first, date parts (year, month) last."""
    nums = [(measure_rank(p.name), i, p.name) for i, p in enumerate(profiles) if p.kind == "numeric" and p.count]
    return [n for _, _, n in sorted(nums)]


def main_measure(profiles: list[ColumnProfile]) -> str | None:
    """The numeric column a reader most likely cares about: a revenue/sales-like name, else the first."""
    ranked = ranked_measures(profiles)
    return ranked[0] if ranked else None


def additive_measure(profiles: list[ColumnProfile]) -> str | None:
    m = main_measure(profiles)
    return m if m is not None and measure_rank(m) < len(MEASURE_WORDS) else None


def _trend(df: pd.DataFrame, profiles: list[ColumnProfile]) -> dict[str, Any] | None:
    """Rows (and the main measure's sum) per month, or per week when the dates span under ~4 months."""
    dates = [p for p in profiles if p.kind == "date"]
    if dates:
        dcol = max(dates, key=lambda p: p.count).name
        s = df[dcol]
    else:  # a year and a month column (monthly statistics tables) make a date too
        names = {p.name.lower(): p.name for p in profiles if p.kind == "numeric"}
        if "year" not in names or "month" not in names:
            return None
        y, mo = df[names["year"]], df[names["month"]]
        if not (mo.dropna().between(1, 12).all() and y.dropna().between(1800, 2200).all()):
            return None
        dcol = f"{names['year']}+{names['month']}"
        s = pd.to_datetime(pd.DataFrame({"year": y, "month": mo, "day": 1}), errors="coerce")
    span = (s.max() - s.min()).days
    if span < 1:
        return None
    freq = "W" if span < 120 else "M"
    periods = s.dt.to_period(freq)
    measure = additive_measure(profiles)
    frame = pd.DataFrame({"period": periods})
    agg: dict[str, tuple[str, str]] = {"rows": ("period", "size")}
    if measure:
        frame[measure] = df[measure]
        agg["total"] = (measure, "sum")
    g = frame.dropna(subset=["period"]).groupby("period", sort=True).agg(**agg)
    labels = [str(p.start_time.date()) if freq == "W" else str(p) for p in g.index]
    return {"date_column": dcol, "freq": "week" if freq == "W" else "month", "measure": measure,
            "periods": labels, "rows": [int(v) for v in g["rows"]],
            "totals": [float(v) for v in g["total"]] if measure else []}
