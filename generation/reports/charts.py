"""2-4 PNG charts for a profile: distributions of the main measures, the time trend, the top categories.

matplotlib is imported here only (Agg backend, no display), and each figure is closed after saving so a long
running bot does not accumulate figures.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from generation.reports.profile import Profile, ranked_measures

log = logging.getLogger(__name__)

MAX_CHARTS = 4
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei",
              "Microsoft YaHei", "AR PL UMing CN")


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    plt.rcParams["font.family"] = ["DejaVu Sans", *[f for f in _CJK_FONTS if f in have]]
    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "column"


def make_charts(df: pd.DataFrame, prof: Profile, out_dir: Path) -> list[Path]:
    """Write up to four charts into out_dir and return their paths (fewer when the data has no such column)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    paths: list[Path] = []
    from generation.reports.summarize import ranked_categories

    numeric = ranked_measures(prof.column_profiles)
    cats = [c for c in ranked_categories(prof) if c.distinct > 1]
    plans: list[tuple[str, str]] = []
    if numeric:
        plans.append(("hist", numeric[0]))
    if prof.trend and len(prof.trend["periods"]) >= 2:
        plans.append(("trend", prof.trend["date_column"]))
    if cats:
        plans.append(("bar", cats[0].name))
    for extra in numeric[1:]:
        if len(plans) >= 3:
            break
        plans.append(("hist", extra))
    if len(cats) > 1 and len(plans) < MAX_CHARTS:
        plans.append(("bar", cats[1].name))
    for i, (kind, col) in enumerate(plans[:MAX_CHARTS], 1):
        path = out_dir / f"{i:02d}_{kind}_{_slug(col)}.png"
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # missing CJK glyphs fall back to boxes, never fail
                if kind == "hist":
                    vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                    vals = vals[np.isfinite(vals)]
                    title = f"Distribution of {col}"
                    if len(vals) >= 100:  # a long tail squashes the histogram into one bar: show the middle 98%
                        lo, hi = np.quantile(vals, [0.01, 0.99])
                        if hi > lo and (vals.max() - vals.min()) > 5 * (hi - lo):
                            vals = vals[(vals >= lo) & (vals <= hi)]
                            title += " (middle 98% of values)"
                    ax.hist(vals, bins=min(40, max(5, int(np.sqrt(len(vals))))), color="#4C72B0")
                    ax.set_title(title)
                    ax.set_xlabel(str(col))
                    ax.set_ylabel("rows")
                elif kind == "trend":
                    t = prof.trend or {}
                    ys = t["totals"] if t.get("measure") else t["rows"]
                    ax.plot(range(len(ys)), ys, marker="o" if len(ys) < 40 else None, color="#55A868")
                    step = max(1, len(ys) // 8)
                    ax.set_xticks(range(0, len(ys), step), t["periods"][::step], rotation=30, ha="right",
                                  fontsize=8)
                    what = f"total {t['measure']}" if t.get("measure") else "rows"
                    ax.set_title(f"{what} per {t['freq']} ({col})")
                else:
                    cp = prof.column(col)
                    labels = [lbl for lbl, _ in cp.top][::-1]
                    ax.barh([lbl[:30] for lbl in labels], [v for _, v in cp.top][::-1], color="#C44E52")
                    ax.set_title(f"Top {col} values (rows)")
                # fixed margins: tight_layout costs more than drawing the chart itself
                fig.subplots_adjust(left=0.3 if kind == "bar" else 0.12, right=0.97, top=0.9, bottom=0.2)
                fig.savefig(path)
            paths.append(path)
        except Exception as e:  # a chart is a bonus; the summary must still come out
            log.warning("chart failed kind=%s column=%s err=%r", kind, col, e)
        finally:
            plt.close(fig)
    return paths
