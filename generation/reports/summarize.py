"""From a loaded table to what the user sees: facts (one computed number per line), charts and a narrative.

Every fact is formatted from the profile here, once; the narrative is checked against these exact strings,
so what the model may say is bounded by what the code computed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.reports.charts import make_charts
from generation.reports.loader import LoadedTable
from generation.reports.narrative import Narrative, narrate
from generation.reports.profile import (
    Profile,
    additive_measure,
    is_time_part,
    main_measure,
    profile,
    ranked_measures,
)
from generation.reports.safe import write_csv

log = logging.getLogger(__name__)

MAX_FACTS = 20
MAX_NUMERIC_FACTS = 5


def fmt(x: float | int) -> str:
    """Readable, stable numbers: thousands separators; 2 decimals (4 significant digits below 1)."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "n/a"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def rows_text(n: int, what: str = "row") -> str:
    """'1 row', '2 rows', '1,204 outlier rows'."""
    return f"{fmt(n)} {what}{'' if n == 1 else 's'}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0%"


@dataclass
class Summary:
    """What a summary shows: `facts` lines, chart PNGs, the narrative, the profile and the table itself."""

    facts: list[str]
    charts: list[Path]
    narrative: str
    profile: Profile
    table: LoadedTable
    dropped_sentences: list[str] = field(default_factory=list)
    narrative_source: str = "template"
    export: Path | None = None

    def text(self) -> str:
        """Console/Slack-ready text: title, notes, facts one per line, narrative."""
        t = self.table
        head = f"*{t.name}*" + (f" (sheet {t.sheet})" if t.sheet else "")
        parts = [head, *[f"• {f}" for f in self.facts]]
        if t.notes:
            parts.append("Notes: " + "; ".join(t.notes[:8]) + (" …" if len(t.notes) > 8 else ""))
        if self.narrative:
            parts.append("")
            parts.append(self.narrative)
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        t = self.table
        return {"name": t.name, "format": t.file_format, "sheet": t.sheet, "other_sheets": t.other_sheets,
                "notes": t.notes, "facts": self.facts, "narrative": self.narrative,
                "narrative_source": self.narrative_source, "dropped_sentences": self.dropped_sentences,
                "charts": [str(p) for p in self.charts], "export": str(self.export) if self.export else None,
                "profile": self.profile.to_dict()}


def build_facts(p: Profile) -> list[str]:
    """One computed number (or a few about one column) per line, most useful first."""
    kinds = p.kinds()
    facts = [f"Rows: {fmt(p.rows)}",
             f"Columns: {fmt(p.columns)} (" + ", ".join(f"{fmt(v)} {k}" for k, v in sorted(kinds.items())) + ")"]
    if p.profiled_columns < p.columns:
        facts.append(f"Profiled columns: the first {fmt(p.profiled_columns)} of {fmt(p.columns)}")
    cells = p.rows * p.columns
    facts.append(f"Missing cells: {fmt(p.missing_cells)} ({pct(p.missing_cells, cells)} of all cells)")
    facts.append(f"Duplicate rows: {fmt(p.duplicate_rows)}")
    measure = main_measure(p.column_profiles)
    measure_is_additive = measure is not None and measure == additive_measure(p.column_profiles)
    nums = [p.column(n) for n in ranked_measures(p.column_profiles)]
    for c in nums[:MAX_NUMERIC_FACTS]:
        s = c.stats
        line = (f"{c.name}: mean {fmt(s['mean'])}, median {fmt(s['50%'])}, min {fmt(s['min'])}, "
                f"max {fmt(s['max'])}, std {fmt(s['std'])}")
        if c.name == measure and measure_is_additive:
            line += f", total {fmt(s['mean'] * s['count'])}"
        facts.append(line)
    for c in nums[:MAX_NUMERIC_FACTS]:
        if c.outliers:
            facts.append(f"{c.name}: {rows_text(c.outliers, 'outlier row')} ({pct(c.outliers, c.count)}) by the IQR rule")
            break
    for c in ranked_categories(p)[:4]:
        value, n = c.top[0]
        facts.append(f"{c.name}: {fmt(c.distinct)} distinct; most common {value!s} ({rows_text(n)}, "
                     f"{pct(n, c.count)})")
    for c in p.column_profiles:
        if c.kind == "date" and c.first:
            facts.append(f"{c.name}: from {c.first} to {c.last}")
            break
    if p.trend and p.trend["periods"]:
        t = p.trend
        series = t["totals"] if t["measure"] else t["rows"]
        i = max(range(len(series)), key=series.__getitem__)
        what = f"total {t['measure']} {fmt(series[i])}" if t["measure"] else rows_text(int(series[i]))
        facts.append(f"Busiest {t['freq']}: {t['periods'][i]} with {what} ({fmt(len(series))} {t['freq']}s in all)")
    # pairs with a date part (year and a decimal-year date move together by construction) say nothing
    pairs = [(a, b, r) for a, b, r in p.correlations if not (is_time_part(a) or is_time_part(b))]
    for a, b, r in pairs[:2]:
        if abs(r) >= 0.3:
            facts.append(f"{a} and {b} correlate: Pearson r = {r:.2f}")
    gaps = sorted((c for c in p.column_profiles if c.missing), key=lambda c: -c.missing)
    for c in gaps[:3]:
        facts.append(f"{c.name}: {fmt(c.missing)} missing ({pct(c.missing, p.rows)})")
    ids = [c.name for c in p.column_profiles if c.kind == "identifier"]
    if ids:
        facts.append(f"Identifier columns: {fmt(len(ids))} ({', '.join(ids[:4])})")
    return facts[:MAX_FACTS]


def ranked_categories(p: Profile) -> list:  # type: ignore[type-arg]
    """Categorical columns with 2-30 values first (the ones a bar chart or a fact explains best)."""
    cats = [c for c in p.column_profiles if c.kind in ("categorical", "boolean") and c.top]
    return sorted(cats, key=lambda c: (not 2 <= c.distinct <= 30, c.distinct < 2))


def export_profile(p: Profile, path: Path) -> Path:
    """The per-column profile as CSV (top values come from the upload, so cells are formula-escaped)."""
    rows = []
    for c in p.column_profiles:
        s = c.stats
        rows.append([c.name, c.kind, c.count, c.missing, c.distinct, s.get("mean", ""), s.get("std", ""),
                     s.get("min", ""), s.get("50%", ""), s.get("max", ""),
                     c.outliers if c.outliers is not None else "",
                     "; ".join(f"{v} ({n})" for v, n in c.top[:3]), c.first or "", c.last or ""])
    return write_csv(path, ["column", "type", "count", "missing", "distinct", "mean", "std", "min", "median", "max",
                            "outliers_iqr", "top_values", "first", "last"], rows)


def summarize_table(table: LoadedTable, *, out_dir: Path, text_model: Any | None = None) -> Summary:
    """Profile the table, write charts and a profile CSV into out_dir, word the facts."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = profile(table.df)
    facts = build_facts(p)
    charts = make_charts(table.df, p, out_dir)
    export = export_profile(p, out_dir / "profile.csv")
    story: Narrative = narrate(facts, text_model)
    log.info("summary name=%s rows=%d facts=%d charts=%d narrative=%s dropped=%d", table.name, p.rows,
             len(facts), len(charts), story.source, len(story.dropped))
    return Summary(facts=facts, charts=charts, narrative=story.text, profile=p, table=table,
                   dropped_sentences=story.dropped, narrative_source=story.source, export=export)
