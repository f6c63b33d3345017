"""The query spec a question becomes, and its read-only execution with pandas.

A question never runs as code: rules (or, failing them, the text model) fill this small validated spec,
and `run_spec` executes it with boolean masks and groupby. No `eval`, no `DataFrame.query` strings, so
nothing a user or a model writes can reach the interpreter.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

Op = Literal["=", "!=", ">", ">=", "<", "<=", "contains", "in", "between", "missing", "not_missing"]
Part = Literal["year", "quarter", "month", "week", "day"]
Func = Literal["sum", "mean", "median", "min", "max", "count", "count_distinct"]
NUMERIC_FUNCS = ("sum", "mean", "median", "min", "max")
FUNC_LABELS = {"sum": "total", "mean": "average", "median": "median", "min": "min", "max": "max",
               "count": "count", "count_distinct": "distinct"}


class SpecError(ValueError):
    """The spec does not fit the table (unknown column, text column summed...); the message says which."""


class Filter(BaseModel):
    """One condition; `part` compares a date column's year/quarter/month... instead of the date."""

    model_config = ConfigDict(extra="forbid")
    column: str
    op: Op
    value: Any = None
    part: Part | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> "Filter":
        if self.op in ("missing", "not_missing"):
            return self
        if self.value is None:
            raise ValueError(f"filter on {self.column!r} with {self.op!r} needs a value")
        if self.op == "between" and not (isinstance(self.value, (list, tuple)) and len(self.value) == 2):
            raise ValueError("'between' needs [low, high]")
        if self.op == "in" and not isinstance(self.value, (list, tuple)):
            self.value = [self.value]
        return self


class GroupBy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    part: Part | None = None


class Aggregate(BaseModel):
    """What to compute; column None means "count rows"."""

    model_config = ConfigDict(extra="forbid")
    func: Func
    column: str | None = None

    @model_validator(mode="after")
    def _column_needed(self) -> "Aggregate":
        if self.column is None and self.func != "count":
            raise ValueError(f"{self.func} needs a column")
        return self


class Sort(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Literal["value", "group"] = "value"
    descending: bool = True


class QuerySpec(BaseModel):
    """filters -> group by (at most 2) -> one aggregate -> sort -> limit."""

    model_config = ConfigDict(extra="forbid")
    filters: list[Filter] = Field(default_factory=list, max_length=8)
    group_by: list[GroupBy] = Field(default_factory=list, max_length=2)
    aggregate: Aggregate
    sort: Sort | None = None
    limit: int | None = Field(default=None, ge=1, le=1000)

    def describe(self) -> str:
        """A one-line heading such as "total Sales by Region where Segment = Consumer"."""
        agg = self.aggregate
        head = "rows" if agg.column is None else f"{FUNC_LABELS[agg.func]} {agg.column}"
        if agg.func == "count" and agg.column is not None:
            head = f"count of {agg.column}"
        if self.group_by:
            head += " by " + ", ".join(_group_label(g) for g in self.group_by)
        if self.filters:
            head += " where " + " and ".join(_filter_label(f) for f in self.filters)
        if self.limit:
            head = f"{'bottom' if self.sort and not self.sort.descending else 'top'} {self.limit}: " + head
        return head


def _group_label(g: GroupBy) -> str:
    return f"{g.part} of {g.column}" if g.part else g.column


def _filter_label(f: Filter) -> str:
    col = f"{f.part}({f.column})" if f.part else f.column
    if f.op == "missing":
        return f"{col} is missing"
    if f.op == "not_missing":
        return f"{col} is present"
    if f.op == "between":
        return f"{col} between {f.value[0]} and {f.value[1]}"
    if f.op == "in":
        return f"{col} in ({', '.join(map(str, f.value))})"
    return f"{col} {f.op} {f.value}"


# -- column kinds ---------------------------------------------------------------------------------


def looks_like_dates(s: pd.Series) -> bool:
    """Cheap test on up to 200 values: a datetime column, or text where 90% look like and parse as dates."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    sample = s.dropna().astype(str).head(200)
    if sample.empty or sample.str.contains(r"\d{1,4}[-/.年]\d{1,2}", regex=True).mean() < 0.9:
        return False
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().mean() >= 0.9)


def date_series(s: pd.Series) -> pd.Series | None:
    """The column as naive datetimes when it holds dates (90% of non-missing values parse), else None."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
    if not looks_like_dates(s):
        return None
    parsed = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
    if parsed.notna().sum() < 0.9 * s.notna().sum():
        return None
    return parsed.dt.tz_localize(None)


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _date_part(dates: pd.Series, part: str) -> pd.Series:
    if part == "year":
        return dates.dt.year.astype("Int64")
    if part == "quarter":
        return dates.dt.to_period("Q").astype(str).where(dates.notna())
    if part == "month":
        return dates.dt.to_period("M").astype(str).where(dates.notna())
    if part == "week":
        return dates.dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d").where(dates.notna())
    return dates.dt.strftime("%Y-%m-%d").where(dates.notna())


# -- execution ------------------------------------------------------------------------------------


class _Dates:
    """Parses each date column once per query (parsing a million strings takes seconds)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.cache: dict[str, pd.Series | None] = {}

    def __call__(self, column: str) -> pd.Series | None:
        if column not in self.cache:
            self.cache[column] = date_series(self.df[column])
        return self.cache[column]


def check_spec(spec: QuerySpec, df: pd.DataFrame) -> None:
    """Raise SpecError when a column is unknown or the aggregate does not suit its column."""
    cols = set(map(str, df.columns))
    used = [f.column for f in spec.filters] + [g.column for g in spec.group_by]
    used += [spec.aggregate.column] if spec.aggregate.column else []
    for name in used:
        if name not in cols:
            raise SpecError(f"there is no column {name!r}")
    agg = spec.aggregate
    if (agg.func in NUMERIC_FUNCS and agg.column and not is_numeric(df[agg.column])
            and (agg.func not in ("min", "max") or not looks_like_dates(df[agg.column]))):
        raise SpecError(f"{agg.column!r} is not numeric, so it has no {FUNC_LABELS[agg.func]}")
    parted: list[Filter | GroupBy] = [*spec.filters, *spec.group_by]
    for item in parted:
        if item.part and not looks_like_dates(df[item.column]):
            raise SpecError(f"{item.column!r} holds no dates, so it has no {item.part}")


def run_spec(spec: QuerySpec, df: pd.DataFrame) -> pd.DataFrame:
    """Execute the spec on df (never modified); the result's last column is the computed value."""
    check_spec(spec, df)
    dates = _Dates(df)
    mask = pd.Series(True, index=df.index)
    for f in spec.filters:
        mask &= _mask(df, f, dates)
    rows = df.loc[mask]
    agg = spec.aggregate
    label = _value_label(agg)
    if not spec.group_by:
        return pd.DataFrame({label: [_aggregate(rows, agg, dates)]})
    keys = [_key(rows, g, dates).rename(_group_label(g)) for g in spec.group_by]
    grouped = rows.groupby(keys, dropna=True, sort=True)
    if agg.column is None:
        out = grouped.size()
    else:
        values = _values(rows, agg, dates)
        out = values.groupby(keys, dropna=True, sort=True).agg(_PANDAS_FUNC[agg.func])
    out = out.rename(label).reset_index()
    return _sort_limit(out, spec, label)


_PERIOD_NAMES = {"year", "quarter", "month", "week", "day", "date", "period"}
_PANDAS_FUNC = {"sum": "sum", "mean": "mean", "median": "median", "min": "min", "max": "max",
                "count": "count", "count_distinct": "nunique"}


def _value_label(agg: Aggregate) -> str:
    if agg.column is None:
        return "rows"
    return f"{FUNC_LABELS[agg.func]} {agg.column}" if agg.func != "count" else f"count of {agg.column}"


def _values(rows: pd.DataFrame, agg: Aggregate, dates: _Dates) -> pd.Series:
    assert agg.column is not None
    s = rows[agg.column]
    if agg.func in ("min", "max") and not is_numeric(s):
        parsed = dates(agg.column)
        return parsed.loc[rows.index] if parsed is not None else s
    return s


def _aggregate(rows: pd.DataFrame, agg: Aggregate, dates: _Dates) -> Any:
    if agg.column is None:
        return len(rows)
    values = _values(rows, agg, dates)
    result = getattr(values, _PANDAS_FUNC[agg.func])()
    return result.item() if isinstance(result, np.generic) else result


def _key(rows: pd.DataFrame, g: GroupBy, dates: _Dates) -> pd.Series:
    if g.part is None:
        return rows[g.column]
    parsed = dates(g.column)
    if parsed is None:
        raise SpecError(f"{g.column!r} holds no dates, so it has no {g.part}")
    return _date_part(parsed.loc[rows.index], g.part)


def _sort_limit(out: pd.DataFrame, spec: QuerySpec, label: str) -> pd.DataFrame:
    periodic = any(g.part or g.column.strip().casefold() in _PERIOD_NAMES for g in spec.group_by)
    sort = spec.sort or Sort(by="group" if periodic else "value", descending=not periodic)
    by = label if sort.by == "value" else list(out.columns[:-1])
    out = out.sort_values(by, ascending=not sort.descending, kind="stable", na_position="last")
    if spec.limit:
        out = out.head(spec.limit)
    return out.reset_index(drop=True)


def _mask(df: pd.DataFrame, f: Filter, dates: _Dates) -> pd.Series:
    s = df[f.column]
    if f.part:
        parsed = dates(f.column)
        if parsed is None:
            raise SpecError(f"{f.column!r} holds no dates, so it has no {f.part}")
        s = _date_part(parsed, f.part)
    elif f.op in (">", ">=", "<", "<=", "between") and not is_numeric(s):
        parsed = dates(f.column)
        s = parsed if parsed is not None else s
    if f.op == "missing":
        return _missing(df[f.column])
    if f.op == "not_missing":
        return ~_missing(df[f.column])
    if f.op == "contains":
        return s.astype(str).str.contains(str(f.value), case=False, regex=False) & s.notna()
    if f.op == "in":
        return _equal_any(s, list(f.value))
    if f.op == "between":
        lo, hi = (_coerce(s, v) for v in f.value)
        return (s >= lo) & (s <= hi)
    if f.op in ("=", "!="):
        eq = _equal_any(s, [f.value])
        return eq if f.op == "=" else ~eq & s.notna()
    value = _coerce(s, f.value)
    ops = {">": s.gt, ">=": s.ge, "<": s.lt, "<=": s.le}
    return ops[f.op](value).fillna(False).astype(bool)


def _missing(s: pd.Series) -> pd.Series:
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return s.isna() | s.astype(str).str.strip().eq("")
    return s.isna()


def _equal_any(s: pd.Series, values: list[Any]) -> pd.Series:
    """Equality that forgives case for text and "2024" for 2024."""
    if is_numeric(s):
        nums = [_number(v) for v in values]
        return s.isin([n for n in nums if n is not None])
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.isin([pd.Timestamp(v) for v in values])
    wanted = {str(v).strip().casefold() for v in values}
    return s.astype(str).str.strip().str.casefold().isin(wanted) & s.notna()


def _number(v: Any) -> float | None:
    try:
        return float(str(v).replace(",", "").strip())
    except ValueError:
        return None


def _coerce(s: pd.Series, v: Any) -> Any:
    """The comparison value in the column's type; SpecError when it cannot be."""
    if is_numeric(s):
        n = _number(v)
        if n is None:
            raise SpecError(f"{v!r} is not a number")
        return n
    if pd.api.types.is_datetime64_any_dtype(s):
        try:
            return pd.Timestamp(str(v))
        except ValueError:
            raise SpecError(f"{v!r} is not a date") from None
    return str(v)
