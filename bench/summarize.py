"""Benchmark data summaries (`python -m bench.summarize [--quick]`): ours against pandas and ydata-profiling.

Inputs: every shared table (../shared/data/tables/*.csv) plus a generated 1,000,000-row x 20-column CSV
(numbers, categories, dates, text, yes/no, some missing; seeded, written once to bench/out/summarize/).
`--quick` uses a 100,000-row file instead.

Contenders, each run in its own subprocess (one at a time: the target machine has 2 cores), so peak RSS is
that process's own (os.wait4 rusage ru_maxrss) and nothing is shared or cached between them:
  ours    generation.reports: load_table + profile + 2-4 chart PNGs + profile.csv (summarize_table with no
          text model: the narrative is the built-in template, the language model is skipped)
  pandas  pandas.read_csv + DataFrame.describe(include="all") (the baseline for the ratios)
  ydata   ydata-profiling ProfileReport(minimal=True) over pandas.read_csv, HTML report written. It needs
          pandas<3 and numpy<2.4, so it runs from its own venv: .venv-bench (make bench-summarize creates it)
          or the python named by TASKWRIGHT_BENCH_YDATA_PYTHON; "not installed" when neither exists.
"time s" is the measured work inside the subprocess (load to last file written), without interpreter start
and imports; "proc s" is the whole subprocess. "check" compares our statistics with pandas' on the same file:
count, mean, std, min, 25/50/75%, max (describe), 5/95% (quantile), missing and distinct per column.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT.parent / "shared" / "data" / "tables"
CACHE = ROOT / "bench" / "out" / "summarize"
SEED = 20261204
CONTENDERS = ("ours", "pandas", "ydata")
TIMEOUT_S = 900
TARGET_S, TARGET_RSS_MB = 15.0, 2048.0


# ------------------------------------------------------------------------------------------ the big file


def make_big_csv(rows: int, path: Path) -> Path:
    """A seeded rows x 20 sales-like CSV (written once; the name carries the row count and seed)."""
    import numpy as np
    import pandas as pd

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    n = rows

    def with_missing(a: Any, share: float) -> Any:
        s = pd.Series(a)
        s[rng.random(n) < share] = None
        return s

    regions = np.array(["North", "South", "East", "West", "Central"])
    products = np.array([f"Product {i:02d}" for i in range(50)])
    channels = np.array(["web", "app", "store", "phone"])
    cities = np.array([f"City {i:03d}" for i in range(200)])
    words = np.array(["fast", "late", "broken", "great", "box", "price", "again", "support", "color", "size",
                      "refund", "gift", "ok", "small", "large"])
    quantity = rng.integers(1, 21, n)
    unit_price = np.round(rng.lognormal(3.0, 0.8, n), 2)
    discount = np.round(rng.choice([0.0, 0.05, 0.1, 0.2], n, p=[0.6, 0.2, 0.15, 0.05]), 2)
    revenue = np.round(quantity * unit_price * (1 - discount), 2)
    cost = np.round(revenue * rng.uniform(0.4, 0.9, n), 2)
    days = rng.integers(0, 730, n)
    dates = (np.datetime64("2025-01-01") + days.astype("timedelta64[D]")).astype(str)
    comment_idx = rng.integers(0, len(words), (n, 3))
    comments = np.char.add(np.char.add(words[comment_idx[:, 0]], " "), words[comment_idx[:, 1]])
    comments = np.char.add(np.char.add(comments, " "), words[comment_idx[:, 2]])
    customer = rng.integers(0, 100_000, n)
    df = pd.DataFrame({
        "order_id": np.arange(1, n + 1),
        "order_date": with_missing(dates, 0.01),
        "region": regions[rng.integers(0, len(regions), n)],
        "product": products[rng.integers(0, len(products), n)],
        "channel": with_missing(channels[rng.integers(0, len(channels), n)], 0.03),
        "customer_id": np.char.add("C", np.char.zfill(customer.astype(str), 6)),
        "city": cities[rng.integers(0, len(cities), n)],
        "quantity": quantity,
        "unit_price": unit_price,
        "discount": with_missing(discount, 0.05),
        "revenue": revenue,
        "cost": with_missing(cost, 0.02),
        "profit": np.round(revenue - cost, 2),
        "rating": with_missing(rng.integers(1, 6, n).astype(float), 0.10),
        "returned": np.where(rng.random(n) < 0.07, "yes", "no"),
        "ship_days": rng.poisson(3.0, n),
        "score": np.round(rng.normal(50, 15, n), 3),
        "weight_kg": with_missing(np.round(rng.gamma(2.0, 1.5, n), 3), 0.2),
        "comment": with_missing(comments, 0.3),
        "email": with_missing(np.char.add(np.char.add("user", customer.astype(str)), "@example.com"), 0.15),
    })
    tmp = path.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def pandas_reference(path: Path) -> Any:
    """What pandas itself reads: the stocks file has a comment line above its header (README of the tables)."""
    import pandas as pd

    return pd.read_csv(path, comment="#") if path.name == "stocks_messy.csv" else pd.read_csv(path)


# ------------------------------------------------------------------------------------ the three workers


def _work_ours(path: Path, out: Path) -> dict[str, Any]:
    from generation.reports.charts import _plt
    from generation.reports.loader import load_table
    from generation.reports.summarize import summarize_table

    _plt()  # matplotlib's import (about 1 s) happens once per bot process; imports are outside every timing
    t0 = time.perf_counter()
    table = load_table(path, path.name, max_bytes=2 * 1024**3)
    t1 = time.perf_counter()
    summary = summarize_table(table, out_dir=out, text_model=None)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "load_s": t1 - t0, "summary_s": t2 - t1, "charts": len(summary.charts),
            "narrative": summary.narrative_source}


def _work_pandas(path: Path, out: Path) -> dict[str, Any]:
    import pandas  # noqa: F401  (imported before the clock starts, as for the other contenders)

    t0 = time.perf_counter()
    df = pandas_reference(path)
    desc = df.describe(include="all")
    return {"seconds": time.perf_counter() - t0, "cells": int(desc.size)}


def _work_ydata(path: Path, out: Path) -> dict[str, Any]:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from ydata_profiling import ProfileReport

    t0 = time.perf_counter()
    df = pandas_reference(path)
    report = ProfileReport(df, minimal=True, progress_bar=False, title=path.name)
    report.to_file(out / "ydata.html", silent=True)
    return {"seconds": time.perf_counter() - t0}


WORKERS = {"ours": _work_ours, "pandas": _work_pandas, "ydata": _work_ydata}


def worker_main(kind: str, path: Path, out: Path) -> None:
    """Run one contender on one file in this process and print its JSON result on the last stdout line."""
    t0 = time.perf_counter()
    result = WORKERS[kind](path, out)
    result["total_in_process_s"] = time.perf_counter() - t0
    sys.stdout.write("\n" + json.dumps(result) + "\n")


# ------------------------------------------------------------------------------------------- the parent


def ydata_python() -> str | None:
    """The interpreter that has ydata-profiling: TASKWRIGHT_BENCH_YDATA_PYTHON, .venv-bench, or this one."""
    env = os.environ.get("TASKWRIGHT_BENCH_YDATA_PYTHON")
    candidates = [env] if env else [str(ROOT / ".venv-bench" / "bin" / "python"), sys.executable]
    for py in candidates:
        if py and Path(py).exists() and subprocess.run(
                [py, "-c", "import ydata_profiling"], capture_output=True, timeout=120, check=False).returncode == 0:
            return py
    return None


def run_contender(kind: str, path: Path, python: str, timeout_s: float) -> dict[str, Any]:
    """One subprocess; its own peak RSS from wait4's rusage (ru_maxrss is KiB on Linux)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from bench.summarize import worker_main;"
                " from pathlib import Path; worker_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))")
        cmd = [python, "-c", code, str(ROOT), kind, str(path), tmp]
        env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
            proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=str(ROOT))
            deadline = t0 + timeout_s
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    return {"error": f"timeout after {timeout_s:.0f} s", "rss_mb": usage.ru_maxrss / 1024}
                time.sleep(0.05)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            so.seek(0)
            se.seek(0)
            out, err = so.read().decode(errors="replace"), se.read().decode(errors="replace")
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {last[:120]}", "rss_mb": usage.ru_maxrss / 1024}
    result = json.loads(out.strip().splitlines()[-1])
    result.update(proc_s=wall, rss_mb=usage.ru_maxrss / 1024)
    return result


def check_against_pandas(path: Path) -> tuple[bool, str]:
    """Our profile's statistics against pandas' own on the same file: (all equal, what differs)."""
    import numpy as np

    from generation.reports.loader import load_table
    from generation.reports.profile import profile

    ref = pandas_reference(path)
    prof = profile(load_table(path, path.name, max_bytes=2 * 1024**3).df)
    bad: list[str] = []
    if (prof.rows, prof.columns) != ref.shape:
        bad.append(f"shape {(prof.rows, prof.columns)} != {ref.shape}")
    desc = ref.describe()
    checked = 0
    for cp, col in zip(prof.column_profiles, ref.columns):
        if cp.name != col:
            bad.append(f"column {cp.name!r} != {col!r}")
            continue
        if cp.missing != int(ref[col].isna().sum()):
            bad.append(f"{col}: missing {cp.missing}")
        if cp.distinct != int(ref[col].nunique()):
            bad.append(f"{col}: distinct {cp.distinct}")
        checked += 2
        if col not in desc.columns:
            continue
        want = {k: float(desc.at[k, col]) for k in ("count", "mean", "std", "min", "25%", "50%", "75%", "max")}
        want["5%"], want["95%"] = (float(v) for v in ref[col].quantile([0.05, 0.95]))
        for key, w in want.items():
            got = cp.stats.get(key, math.nan)
            checked += 1
            if not (np.isclose(got, w, rtol=1e-12, atol=1e-12) or (math.isnan(got) and math.isnan(w))):
                bad.append(f"{col}: {key} {got!r} != {w!r}")
    return not bad, f"ok ({checked} values)" if not bad else "DIFFERS: " + "; ".join(bad[:4])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.summarize", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 100,000-row generated file instead of 1,000,000")
    ap.add_argument("--rows", type=int, default=None, help="rows of the generated file (overrides --quick)")
    ap.add_argument("--only", choices=("shared", "big"), default=None, help="only the shared tables / the big file")
    ap.add_argument("--no-ydata", action="store_true", help="skip ydata-profiling")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per contender and file")
    args = ap.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    files: list[Path] = []
    if args.only != "big":
        files += sorted(TABLES.glob("*.csv"))
    if args.only != "shared":
        print(f"generating {rows:,} x 20 CSV (once) in {CACHE} ...", flush=True)
        files.append(make_big_csv(rows, CACHE / f"synthetic_{rows}x20_seed{SEED}.csv"))
    ypy = None if args.no_ydata else ydata_python()
    print(f"ydata-profiling: {ypy or ('skipped' if args.no_ydata else 'not installed (skipped)')}", flush=True)
    header = ("file", "MB", "ours s", "ours RSS MB", "pandas s", "pandas RSS MB", "ydata s", "ydata RSS MB",
              "ours/pandas", "ydata/ours", "check vs pandas")
    rows_out: list[list[str]] = []
    for path in files:
        res = {"ours": run_contender("ours", path, sys.executable, args.timeout),
               "pandas": run_contender("pandas", path, sys.executable, args.timeout)}
        res["ydata"] = run_contender("ydata", path, ypy, args.timeout) if ypy else {
            "error": "skipped" if args.no_ydata else "not installed"}
        _, what = check_against_pandas(path)
        rows_out.append(_flat([path.name, f"{path.stat().st_size / 1e6:.1f}",
                               *(_cells(res[k]) for k in CONTENDERS), _ratio(res["ours"], res["pandas"]),
                               _ratio(res["ydata"], res["ours"]), what]))
        print(" | ".join(rows_out[-1]), flush=True)
        for k in CONTENDERS:
            if "error" in res[k]:
                print(f"  {k}: {res[k]['error']}", flush=True)
        if "load_s" in res["ours"]:
            print(f"  ours: load {res['ours']['load_s']:.2f} s + profile/charts {res['ours']['summary_s']:.2f} s, "
                  f"{res['ours']['charts']} charts, narrative: {res['ours']['narrative']} (model skipped); "
                  f"process {res['ours']['proc_s']:.1f} s", flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows_out:
        print("| " + " | ".join(r) + " |")
    big = rows_out[-1] if args.only != "shared" else None
    if big is not None:
        try:
            secs, rss = float(big[2]), float(big[3])
            verdict = "meets" if secs < TARGET_S and rss < TARGET_RSS_MB else "MISSES"
            print(f"\ntarget for {big[0]}: under {TARGET_S:.0f} s and {TARGET_RSS_MB:.0f} MB -> ours {secs:.1f} s, "
                  f"{rss:.0f} MB: {verdict}")
        except ValueError:
            print(f"\ntarget for {big[0]}: ours failed")
    print(f"machine: {os.cpu_count()} CPUs; times are the work inside each subprocess (imports excluded)")
    return 0


def _cells(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        short = r["error"] if r["error"] in ("not installed", "skipped") else \
            "timeout" if "timeout" in r["error"] else "failed"
        return [short, "-"]
    return [f"{r['seconds']:.2f}", f"{r['rss_mb']:.0f}"]


def _flat(row: list[Any]) -> list[str]:
    out: list[str] = []
    for c in row:
        out.extend(c if isinstance(c, list) else [c])
    return out


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    if "seconds" not in a or "seconds" not in b or b["seconds"] <= 0:
        return "-"
    return f"{a['seconds'] / b['seconds']:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
