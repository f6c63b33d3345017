"""`taskwright summarize FILE`: the chat summary in the console (facts, notes, narrative) plus PNG charts.

The same `load_table` / `summarize_table` the Slack handler uses, so what the console prints is what the
thread shows. `--question` hands the loaded table to the query module (read-only spec, never code).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import click


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("_") or "table"


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the structured summary (or answer) as JSON.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the chart PNGs and profile.csv [default: <home>/files/summaries/<file>].")
@click.option("--question", "-q", default=None, help='Answer a question instead, e.g. "total Sales by Region".')
@click.option("--sheet", default=None, help="Workbook sheet to read [default: the largest].")
@click.option("--model/--no-model", "use_model", default=None,
              help="Word the narrative with the text model [default: only when TASKWRIGHT_GENERATION_URL is set].")
@click.pass_context
def summarize(ctx: click.Context, file: str, as_json: bool, out_dir: Path | None, question: str | None,
              sheet: str | None, use_model: bool | None) -> None:
    """Summarize a CSV/TSV/Excel/JSON/Parquet file: computed facts, 2-4 charts and a short narrative.

    Example: taskwright summarize sales.csv --out charts/
    """
    from bot.cli import _settings
    from bot.files import max_bytes_for
    from generation.reports import TableError, load_table, summarize_table

    settings = _settings(ctx)
    out = out_dir or settings.files_dir / "summaries" / _slug(file)
    try:
        table = load_table(file, Path(file).name, max_bytes=max_bytes_for(settings.max_file_mb), sheet=sheet)
    except TableError as e:
        raise click.ClickException(e.user_message) from None
    try:  # charts and profile.csv go here; an unwritable folder is one line, not a traceback
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        logging.getLogger(__name__).info("summarize: cannot create %s: %r", out, e)
        raise click.ClickException(f"cannot write the charts to {out} ({e}); pass --out with a writable folder.") \
            from None
    if question:
        _answer(table, question, out, as_json)
        return
    text_model = None
    if use_model or (use_model is None and settings.generation_url):
        try:
            from generation.client import build_text_model

            text_model = build_text_model(settings)
        except Exception as e:  # the narrative falls back to the template; the numbers do not depend on it
            click.echo(f"(text model unavailable: {e}; using the template narrative)", err=True)
    summary = summarize_table(table, out_dir=out, text_model=text_model)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(summary.text())
    click.echo("")
    click.echo(f"Charts: {', '.join(str(p) for p in summary.charts) or 'none (no numeric, date or category column)'}")
    if summary.export:
        click.echo(f"Column profile: {summary.export}")


def _answer(table, question: str, out: Path, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from generation.reports.query import answer_question

    out.mkdir(parents=True, exist_ok=True)
    ans = answer_question(table.df, question, out_dir=out)
    if as_json:
        click.echo(json.dumps({"ok": ans.ok, "text": ans.text, "spec": ans.spec,
                               "chart": str(ans.chart) if ans.chart else None,
                               "rows": json.loads(ans.table.to_json(orient="records", date_format="iso"))
                               if ans.table is not None else None}, ensure_ascii=False, indent=2))
    else:
        click.echo(ans.text)
        if ans.chart:
            click.echo(f"Chart: {ans.chart}")
    if not ans.ok:
        raise SystemExit(2)
