"""Follow-up questions about a table: question -> validated QuerySpec -> pandas -> a table, maybe a chart.

Rules (query_parse) handle the common forms in English and Chinese. Only when they find no form may the
text model help, and then only by filling the same JSON spec, which is validated against the schema and
the table's columns before it runs; nothing the model writes is executed. Questions the spec cannot
express get "I can't answer that yet" with the forms that work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from generation.reports.query_parse import Columns, Unplaced, parse_question
from generation.reports.query_spec import Aggregate, QuerySpec, SpecError, check_spec, is_numeric, run_spec

log = logging.getLogger(__name__)

MAX_ROWS = 20
MAX_QUESTION = 500
FORMS = (
    "• total <number column> by <column>  (total Sales by Region)",
    "• top 5 <column> by <number column> [in 2024]  (top 5 Category by Profit)",
    "• average <number column> per month / week / quarter / year",
    "• sum of <number column> where <column> = <value>  (… in the West)",
    "• how many rows have no <column>;  how many distinct <column> by <column>",
    "• 按<列>统计<数值列>;  每月平均<数值列>",
)


@dataclass
class Answer:
    """ok=False: text explains why and lists the forms. chart: a PNG when a grouped result has 2+ rows."""

    ok: bool
    text: str
    table: pd.DataFrame | None = None
    spec: dict[str, Any] | None = None
    chart: Path | None = None


def answer_question(df: pd.DataFrame, question: str, *, embedder: Any = None, text_model: Any = None,
                    out_dir: Path | None = None) -> Answer:
    """Answer one question about df (read-only) with a computed table; see the module docstring."""
    if df is None or df.shape[1] == 0:
        return _cannot("the table has no columns", None)
    if len(question) > MAX_QUESTION:
        log.info("question of %d characters refused", len(question))
        return _cannot(f"the question is longer than {MAX_QUESTION} characters", None)
    cols = Columns(df, embedder)
    spec, problem = None, ""
    try:
        spec = parse_question(question, cols)
    except Unplaced as e:
        problem = f"no column or value matches “{e}”"
    except (SpecError, ValidationError, ValueError) as e:
        problem = str(e).splitlines()[0]
    if spec is None and text_model is not None and question.strip():
        spec = _spec_from_model(text_model, question, cols)
    if spec is None:
        log.info("question not understood: %r (%s)", question[:200], problem or "no known form")
        return _cannot(problem, cols)
    try:
        table = run_spec(spec, df)
    except SpecError as e:
        log.info("spec does not fit the table: %s: %s", spec.model_dump(), e)
        return _cannot(str(e), cols)
    log.info("answered %r with %s (%d result rows)", question[:200], spec.model_dump(), len(table))
    text = _text(spec, table, df)
    chart = _chart(spec, table, out_dir, question) if out_dir is not None else None
    return Answer(ok=True, text=text, table=table, spec=spec.model_dump(), chart=chart)


def _cannot(problem: str, cols: Columns | None) -> Answer:
    lines = ["I can't answer that yet" + (f": {problem}." if problem else ".")]
    if cols is not None:
        more = f", … {len(cols.names) - 30} more" if len(cols.names) > 30 else ""
        shown = ", ".join(cols.names[:30]) + more
        lines.append(f"Columns: {shown}")
    lines += ["I can answer questions like:", *FORMS]
    return Answer(ok=False, text="\n".join(lines))


def _text(spec: QuerySpec, table: pd.DataFrame, df: pd.DataFrame) -> str:
    heading = spec.describe()
    if df.empty:
        return f"The table has no rows, so {heading} has nothing to count."
    if spec.filters:
        counting = QuerySpec(filters=spec.filters, aggregate=Aggregate(func="count"))
        matched = int(run_spec(counting, df).iat[0, 0])
        if matched == 0:
            return f"No rows match {heading.split(' where ', 1)[-1]}.{_known_values(spec, df)}"
        heading += f"  ({matched:,} of {len(df):,} rows)"
    if spec.group_by and table.empty:
        return f"{heading}: no groups (every row has the grouping column missing)."
    return f"*{heading}*\n{format_table(table)}"


def _known_values(spec: QuerySpec, df: pd.DataFrame) -> str:
    hints = []
    for f in spec.filters:
        s = df[f.column]
        if f.op in ("=", "in") and not f.part and not is_numeric(s) and s.nunique() <= 20:
            hints.append(f" {f.column} has: " + ", ".join(sorted(map(str, s.dropna().unique()))) + ".")
    return "".join(hints)


def format_cell(v: Any, *, key: bool = False) -> str:
    """Numbers with thousands separators (floats with two decimals), dates as ISO, missing as —.

    key=True is for grouping columns, where a year must read 2024, not 2,024.
    """
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d") if v == v.normalize() else v.isoformat(sep=" ")
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v) if key else f"{v:,}"
    if isinstance(v, float):
        if key and v.is_integer():
            return str(int(v))
        return f"{v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.4g}"
    text = str(v).replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def format_table(table: pd.DataFrame, *, max_rows: int = MAX_ROWS) -> str:
    """An aligned monospace table in a ``` block (numbers right-aligned), at most max_rows rows."""
    shown = table.head(max_rows)
    headers = [str(c) for c in shown.columns]
    last = len(headers) - 1
    cells = [[format_cell(v.item() if hasattr(v, "item") else v, key=i < last) for i, v in enumerate(row)]
             for row in shown.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric))
        return "  ".join(padded).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in cells]
    if len(table) > max_rows:
        out.append(f"… {len(table) - max_rows:,} more")
    return "```\n" + "\n".join(out) + "\n```"


def _chart(spec: QuerySpec, table: pd.DataFrame, out_dir: Path, question: str) -> Path | None:
    """A bar chart (categories) or line chart (periods) of a one-key grouped result with 2+ rows."""
    if len(spec.group_by) != 1 or len(table) < 2:
        return None
    from matplotlib.figure import Figure

    shown = table.head(30)
    labels = [format_cell(v.item() if hasattr(v, "item") else v, key=True) for v in shown.iloc[:, 0]]
    values = pd.to_numeric(shown.iloc[:, -1], errors="coerce").fillna(0)
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    if spec.group_by[0].part:
        ax.plot(labels, values, marker="o")
        ax.tick_params(axis="x", labelrotation=45)
    else:
        ax.barh(labels[::-1], values[::-1])
    ax.set_title(spec.describe()[:80])
    ax.set_xlabel("" if spec.group_by[0].part else str(table.columns[-1]))
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(f"{question}|{spec.model_dump_json()}".encode()).hexdigest()[:10]
    path = out_dir / f"answer-{digest}.png"
    fig.savefig(path)
    return path


# -- the text model, only to fill the spec ---------------------------------------------------------

_EXAMPLE = ('{"filters": [{"column": "Region", "op": "=", "value": "West"}], '
            '"group_by": [{"column": "Category", "part": null}], '
            '"aggregate": {"func": "sum", "column": "Sales"}, "sort": {"by": "value", "descending": true}, '
            '"limit": 5}')


def _spec_from_model(text_model: Any, question: str, cols: Columns) -> QuerySpec | None:
    """Ask the model for the spec as JSON; keep it only if it validates and names real columns."""
    described = "; ".join(f"{c} ({'number' if c in cols.numeric else 'text'})" for c in cols.names[:60])
    messages = [
        {"role": "system", "content": (
            "Turn a question about a table into a JSON query. Reply with one JSON object only, no code. "
            "Keys: filters (list of {column, op, value, part}; op one of = != > >= < <= contains in between "
            "missing not_missing; part null or year/quarter/month/week/day), "
            "group_by (list of {column, part}), "
            "aggregate ({func: sum|mean|median|min|max|count|count_distinct, column}), "
            "sort ({by: value|group, "
            f"descending}}), limit. Example: {_EXAMPLE}")},
        {"role": "user", "content": f"Columns: {described}\nQuestion: {question.strip()[:500]}"},
    ]
    try:
        reply = text_model.complete(messages, max_tokens=256, temperature=0.0)
    except Exception as e:  # a model failure must not lose the answer: the user gets the forms instead
        log.warning("text model failed while filling a query spec: %r", e)
        return None
    found = re.search(r"\{.*\}", reply or "", re.S)
    try:
        spec = QuerySpec.model_validate(_real_columns(json.loads(found.group(0)), cols)) if found else None
        if spec is not None:
            check_spec(spec, cols.df)
    except (ValueError, ValidationError, SpecError, TypeError) as e:
        log.info("model's query spec rejected: %s; reply was %r", str(e).splitlines()[0], (reply or "")[:300])
        return None
    log.info("model filled the query spec for %r: %s", question[:200], spec.model_dump() if spec else None)
    return spec


def _real_columns(raw: Any, cols: Columns) -> Any:
    """Snap the model's column names to the table's (case and spacing only); unknown names stay and fail."""
    if isinstance(raw, dict):
        out = {}
        for k, v in raw.items():
            if k == "column" and isinstance(v, str):
                close = [c for c in cols.names if Columns._name_score(v, c) >= 0.95]
                v = close[0] if close else v
            out[k] = _real_columns(v, cols)
        return out
    if isinstance(raw, list):
        return [_real_columns(v, cols) for v in raw]
    return raw
