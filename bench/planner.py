"""Benchmark the LLM planner candidates and print a table (`python -m bench.planner`).

For each candidate model and engine: load time, latency of each plan (first, second, mean), how many plans
validated (first try, and after the one repair), and the mean number of subtasks, over eight requests in
English and Chinese. Details (every plan's titles or error) go to bench/out/planner.json.
Runs one model at a time; the target machine has 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import load_settings
from planner.chain import PlanChain
from planner.errors import InvalidPlanError, TaskwrightError
from planner.llm import ChatLlamaCpp, ChatTransformersLocal
from planner.models import ensure_model

log = logging.getLogger(__name__)

TODAY = dt.date(2025, 12, 3)
REQUESTS = [
    ("Prepare the Q3 sales report for the board meeting next Friday", dt.date(2025, 12, 12)),
    ("Launch the new pricing page by Dec 20", dt.date(2025, 12, 20)),
    ("Hire a senior backend engineer this quarter", dt.date(2025, 12, 31)),
    ("Migrate our customer database from MySQL to PostgreSQL without downtime", None),
    ("下周五前完成新员工入职培训材料", dt.date(2025, 12, 12)),
    ("月底前组织一次客户满意度调查并汇总结果", dt.date(2025, 12, 31)),
    ("Fix the login bug reported by customers and ship a hotfix", None),
    ("为新产品发布会准备宣传海报和新闻稿", None),
]
VOCABULARY = [
    "python", "sql", "data analysis", "excel", "presentation", "writing", "design", "graphic design",
    "finance", "project management", "marketing", "recruiting", "devops", "backend", "frontend", "qa",
    "customer support", "translation", "chinese", "public relations",
]  # fmt: skip
CANDIDATES = {
    "qwen2.5-coder-1.5b": ("llamacpp", "qwen2.5-coder-1.5b"),
    "qwen2.5-coder-0.5b": ("llamacpp", "qwen2.5-coder-0.5b"),
    "smollm2-135m": ("llamacpp", "smollm2-135m"),
    "qwen2.5-coder-0.5b/transformers": ("transformers", "qwen2.5-coder-0.5b"),
}


@dataclass
class Run:
    """One request through one candidate."""

    request: str
    seconds: float
    source: str = ""
    subtasks: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Result:
    """One candidate's figures."""

    name: str
    engine: str
    load_s: float
    runs: list[Run]
    error: str = ""

    def row(self) -> list[str]:
        if self.error:
            return [self.name, self.engine, "-", "-", "-", "-", "-", "-", "-", self.error[:60]]
        secs = [r.seconds for r in self.runs]
        ok = [r for r in self.runs if r.source]
        first = sum(r.source == "llm" for r in self.runs)
        n = len(self.runs)
        return [
            self.name,
            self.engine,
            f"{self.load_s:.1f}",
            f"{secs[0]:.1f}" if secs else "-",
            f"{secs[1]:.1f}" if len(secs) > 1 else "-",
            f"{statistics.mean(secs):.1f}" if secs else "-",
            f"{first}/{n}",
            f"{len(ok)}/{n}",
            f"{statistics.mean(len(r.subtasks) for r in ok):.1f}" if ok else "-",
            "",
        ]


HEADER = [
    "model",
    "engine",
    "load s",
    "1st s",
    "2nd s",
    "mean s",
    "valid 1st",
    "valid+repair",
    "subtasks",
    "note",
]


def _model(engine: str, name: str, *, threads: int, models_dir: Path) -> Any:
    path = ensure_model(name, models_dir)
    if engine == "transformers":
        saved = models_dir / f"{name}.hf"
        return ChatTransformersLocal(
            model_path=str(path), saved_dir=str(saved), model_name=name, n_threads=threads
        )
    return ChatLlamaCpp(model_path=str(path), model_name=name, n_threads=threads)


def bench_one(
    label: str, *, threads: int, models_dir: Path, requests: list[tuple[str, dt.date | None]]
) -> Result:
    """Load one candidate and plan every request with it."""
    engine, name = CANDIDATES[label]
    t0 = time.perf_counter()
    try:
        model = _model(engine, name, threads=threads, models_dir=models_dir)
        model.load()
    except TaskwrightError as e:
        return Result(label, engine, 0.0, [], error=str(e))
    load_s = time.perf_counter() - t0
    chain = PlanChain(model)
    runs = []
    for text, deadline in requests:
        t1 = time.perf_counter()
        try:
            plan = chain.propose(
                text, today=TODAY, requester="U0DEMOELI", skills_vocabulary=VOCABULARY, deadline=deadline
            )
            run = Run(text, time.perf_counter() - t1, plan.source, [s.title for s in plan.subtasks])
        except InvalidPlanError as e:
            run = Run(text, time.perf_counter() - t1, error=str(e))
        print(
            f"  {label}: {run.seconds:5.1f} s {run.source or 'INVALID':10} {text[:50]}",
            file=sys.stderr,
            flush=True,
        )
        runs.append(run)
    return Result(label, engine, load_s, runs)


def format_table(rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default=",".join(CANDIDATES), help="comma-separated: " + ", ".join(CANDIDATES)
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: TASKWRIGHT_LLM_THREADS)"
    )
    parser.add_argument("--requests", type=int, default=len(REQUESTS), help="how many of the 8 requests")
    parser.add_argument(
        "--transformers-requests",
        type=int,
        default=3,
        help="requests for the (slow on CPU) transformers engine",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/planner.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    threads = args.threads or settings.llm_threads
    results = []
    for label in args.models.split(","):
        print(f"{label} ({threads} threads)...", file=sys.stderr, flush=True)
        n = (
            args.requests
            if CANDIDATES[label][0] == "llamacpp"
            else min(args.requests, args.transformers_requests)
        )
        results.append(
            bench_one(label, threads=threads, models_dir=settings.models_dir, requests=REQUESTS[:n])
        )
    print(format_table([HEADER] + [r.row() for r in results]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=1))
    print(f"details: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
