"""Summaries of the shared tables: statistics equal pandas' own, facts, charts, CLI and the parser's cases."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from generation.reports import TableError, load_table, summarize_table
from generation.reports.profile import profile

TABLES = Path("/work/shared/data/tables")
if not TABLES.is_dir():  # a fresh clone next to ../shared
    TABLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables"
FILES = sorted(TABLES.glob("*.csv"))
STAT_KEYS = ("count", "mean", "std", "min", "25%", "50%", "75%", "max")


def _pandas_frame(path: Path) -> pd.DataFrame:
    """What pandas itself reads (the README's shapes): comment lines only for the stocks file."""
    return pd.read_csv(path, comment="#") if path.name == "stocks_messy.csv" else pd.read_csv(path)


@pytest.fixture(scope="module", params=FILES, ids=lambda p: p.name)
def shared(request: pytest.FixtureRequest) -> tuple[Path, pd.DataFrame, object]:
    path = request.param
    table = load_table(path)
    return path, _pandas_frame(path), table


def test_shared_tables_exist() -> None:
    assert len(FILES) == 8


def test_shape_and_counts_equal_pandas(shared) -> None:  # type: ignore[no-untyped-def]
    path, ref, table = shared
    prof = profile(table.df)
    assert (prof.rows, prof.columns) == ref.shape
    assert prof.missing_cells == int(ref.isna().sum().sum())
    assert prof.duplicate_rows == int(ref.duplicated().sum())
    for cp, col in zip(prof.column_profiles, ref.columns, strict=True):
        assert cp.name == col
        assert cp.missing == int(ref[col].isna().sum()), col
        assert cp.distinct == int(ref[col].nunique()), col


def test_numeric_statistics_equal_describe(shared) -> None:  # type: ignore[no-untyped-def]
    path, ref, table = shared
    prof = profile(table.df)
    desc = ref.describe()
    assert len(desc.columns) > 0
    for col in desc.columns:
        stats = prof.column(col).stats
        for key in STAT_KEYS:
            want = float(desc.at[key, col])
            assert stats[key] == pytest.approx(want, rel=1e-12, abs=1e-12, nan_ok=True), (path.name, col, key)


def test_top_values_and_correlations_equal_pandas(shared) -> None:  # type: ignore[no-untyped-def]
    path, ref, table = shared
    prof = profile(table.df)
    for cp in prof.column_profiles:
        if cp.kind == "categorical":
            vc = ref[cp.name].value_counts().head(len(cp.top))
            assert [n for _, n in cp.top] == [int(v) for v in vc.to_numpy()], cp.name
            assert cp.top[0][0] == str(vc.index[0])
    for a, b, r in prof.correlations:
        assert r == pytest.approx(ref[[a, b]].corr().iat[0, 1], rel=1e-9)


def test_outliers_are_the_iqr_rule(shared) -> None:  # type: ignore[no-untyped-def]
    _, ref, table = shared
    prof = profile(table.df)
    for cp in prof.column_profiles:
        if cp.kind == "numeric":
            s = ref[cp.name]
            q1, q3 = s.quantile(0.25), s.quantile(0.75)
            iqr = q3 - q1
            assert cp.outliers == int(((s < q1 - 1.5 * iqr) | (s > q3 + 1.5 * iqr)).sum()), cp.name


@pytest.mark.slow  # eight files with charts: about 15 s
def test_summary_facts_and_charts(shared, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, ref, table = shared
    summary = summarize_table(table, out_dir=tmp_path)
    assert summary.facts[0] == f"Rows: {len(ref):,}"
    assert 2 <= len(summary.charts) <= 4
    for png in summary.charts:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.parent == tmp_path
    json.dumps(summary.to_dict())  # JSON-able
    assert summary.narrative


def test_superstore_facts_are_computed_numbers(tmp_path: Path) -> None:
    ref = pd.read_csv(TABLES / "superstore_orders.csv")
    s = summarize_table(load_table(TABLES / "superstore_orders.csv"), out_dir=tmp_path)
    sales = next(f for f in s.facts if f.startswith("Sales: mean"))
    assert f"mean {ref.Sales.mean():,.2f}" in sales and f"total {ref.Sales.sum():,.2f}" in sales
    assert f"max {ref.Sales.max():,.2f}" in sales
    assert f"Duplicate rows: {ref.duplicated().sum()}" in s.facts
    assert any("Region: 4 distinct; most common West (3,203 rows" in f for f in s.facts)


def test_time_trend_per_month_matches_groupby(tmp_path: Path) -> None:
    prof = profile(load_table(TABLES / "pizza_sales.csv").df)
    ref = pd.read_csv(TABLES / "pizza_sales.csv", parse_dates=["date"])
    by_month = ref.groupby(ref.date.dt.to_period("M")).price.agg(["size", "sum"])
    assert prof.trend is not None and prof.trend["freq"] == "month"
    assert prof.trend["periods"] == [str(p) for p in by_month.index]
    assert prof.trend["rows"] == by_month["size"].tolist()
    assert prof.trend["totals"] == pytest.approx(by_month["sum"].tolist())


def test_weekly_trend_for_short_spans() -> None:
    prof = profile(load_table(TABLES / "game_revenue.csv").df)
    assert prof.trend and prof.trend["freq"] == "week" and prof.trend["measure"] == "item_revenue"
    assert sum(prof.trend["rows"]) == 2000


def test_inferred_types() -> None:
    kinds = {c.name: c.kind for c in profile(load_table(TABLES / "global_sales_sample.csv").df).column_profiles}
    assert kinds["revenue"] == "numeric" and kinds["region"] == "categorical" and kinds["timestamp"] == "date"
    assert kinds["product_id"] == "identifier" and kinds["email"] in ("identifier", "text")
    df = pd.DataFrame({"flag": [True, False] * 20, "yes": ["yes", "no"] * 20, "n": range(40),
                       "note": [f"free text number {i} with words" for i in range(40)]})
    kinds = {c.name: c.kind for c in profile(load_table(df.to_csv(index=False).encode(), "t.csv").df).column_profiles}
    assert kinds == {"flag": "boolean", "yes": "boolean", "n": "identifier", "note": "text"}


# ------------------------------------------------------------------------------------------ parsing cases


def _load(text: str | bytes, name: str = "t.csv"):  # type: ignore[no-untyped-def]
    return load_table(text.encode("utf-8") if isinstance(text, str) else text, name)


def test_encodings() -> None:
    rows = "城市,销售额\n北京,100\n上海,250\n广州,75\n"
    for enc in ("gbk", "gb18030", "utf-8-sig", "utf-8"):
        t = _load(rows.encode(enc))
        assert list(t.df.columns) == ["城市", "销售额"], enc
        assert t.df["销售额"].sum() == 425
    latin = "name,city\nJosé,Córdoba\nFrançois,Besançon\nAnaïs,Nîmes\nRenée,Orléans\n".encode("latin-1")
    t = _load(latin)
    assert t.df["city"].tolist() == ["Córdoba", "Besançon", "Nîmes", "Orléans"]
    assert any("encoding" in n for n in t.notes)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_sniffing(sep: str) -> None:
    t = _load(sep.join(["a", "b", "c"]) + "\n" + "\n".join(sep.join([str(i), f"x{i}", str(i * 2)])
                                                         for i in range(30)))
    assert list(t.df.columns) == ["a", "b", "c"] and t.df["c"].sum() == 870


def test_quoted_newlines_and_title_rows() -> None:
    text = 'Quarterly export\nGenerated 2026-01-01\n\nid,comment,amount\n1,"line one\nline two",5\n2,"a, b",7\n'
    t = _load(text)
    assert list(t.df.columns) == ["id", "comment", "amount"]
    assert t.df["comment"].tolist() == ["line one\nline two", "a, b"] and t.df["amount"].sum() == 12
    assert any("header on line" in n for n in t.notes)


def test_numbers_with_separators_percent_and_currency() -> None:
    t = _load('item,price,share,cost\na,"1,234.5",12%,$1,000\nb,"2,000",7.5%,"$2,500.25"\n'
              .replace("$1,000", '"$1,000"'))
    assert t.df["price"].tolist() == [1234.5, 2000.0]
    assert t.df["share"].tolist() == [12.0, 7.5]
    assert t.df["cost"].tolist() == [1000.0, 2500.25]
    eu = _load("item;price;qty\na;1.234,5;3\nb;2,25;4\nc;10.000,00;1\n")
    assert eu.df["price"].tolist() == [1234.5, 2.25, 10000.0]
    neg = _load("x,amt\na,(30)\nb,€12\nc,¥1,5\n".replace("¥1,5", '"¥1,500"'))
    assert neg.df["amt"].tolist() == [-30.0, 12.0, 1500.0]


def test_dates_including_chinese_and_mixed_formats() -> None:
    t = _load("day,v\n2026年3月1日,1\n2026年3月2日,2\n2026年4月15日,3\n")
    assert t.df["day"].dt.strftime("%Y-%m-%d").tolist() == ["2026-03-01", "2026-03-02", "2026-04-15"]
    mixed = _load("when,v\n2026-03-01,1\n15/03/2026,2\n2026年4月1日,3\nMar 20, 2026,4\n".replace(
        "Mar 20, 2026", '"Mar 20, 2026"'))
    assert mixed.df["when"].dt.strftime("%Y-%m-%d").tolist() == ["2026-03-01", "2026-03-15", "2026-04-01",
                                                                 "2026-03-20"]
    assert any("formats" in n for n in mixed.notes)


def test_duplicate_and_empty_headers_renamed_with_notes() -> None:
    t = _load("a,a,,b\n1,2,3,4\n5,6,7,8\n")
    assert list(t.df.columns) == ["a", "a_2", "column_3", "b"]
    assert any("duplicate header 'a'" in n for n in t.notes) and any("no header" in n for n in t.notes)


def test_multi_sheet_workbook_takes_the_largest(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xw:
        pd.DataFrame({"x": [1]}).to_excel(xw, sheet_name="Cover", index=False)
        pd.DataFrame({"region": ["N", "S", "E"] * 10, "sales": range(30)}).to_excel(xw, sheet_name="Data",
                                                                                    index=False)
        pd.DataFrame({"k": [1, 2]}).to_excel(xw, sheet_name="Notes", index=False)
    t = load_table(path)
    assert t.sheet == "Data" and t.other_sheets == ["Cover", "Notes"] and t.df["sales"].sum() == 435
    assert load_table(path, sheet="Notes").df["k"].tolist() == [1, 2]
    with pytest.raises(TableError, match="no sheet 'Nope'.*Cover"):
        load_table(path, sheet="Nope")


def test_json_jsonl_and_parquet(tmp_path: Path) -> None:
    recs = [{"a": i, "b": f"x{i % 3}", "nested": {"k": i}} for i in range(10)]
    t = _load(json.dumps(recs), "r.json")
    assert t.df["a"].sum() == 45 and "nested.k" in t.df.columns
    t = _load(json.dumps({"data": recs}), "r.json")
    assert len(t.df) == 10
    t = _load("\n".join(json.dumps(r) for r in recs), "r.jsonl")
    assert len(t.df) == 10 and any("JSON Lines" in n for n in t.notes)
    buf = io.BytesIO()
    pd.DataFrame({"v": [1.5, 2.5], "c": ["a", "b"]}).to_parquet(buf)
    assert load_table(buf.getvalue(), "p.parquet").df["v"].sum() == 4.0


def test_profile_csv_export_escapes_formulas(tmp_path: Path) -> None:
    rows = ["=HYPERLINK(\"http://x\")", "+1+2", "@SUM(A1)", "-2+3", "safe"] * 5
    t = _load("cell,n\n" + "\n".join(f'"{r.replace(chr(34), chr(34) * 2)}",{i}' for i, r in enumerate(rows)))
    assert any("start with =" in n for n in t.notes)
    s = summarize_table(t, out_dir=tmp_path)
    assert s.export is not None
    back = pd.read_csv(s.export, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    for cell in back.to_numpy().ravel():
        assert not str(cell).startswith(("=", "+", "@")), cell
    assert "'=HYPERLINK" in s.export.read_text(encoding="utf-8-sig")


# ------------------------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_summarize_prints_facts_and_writes_charts(tmp_path: Path) -> None:
    from bot.cli import cli

    r = CliRunner().invoke(cli, ["summarize", str(TABLES / "wage_survey.csv"), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    ref = pd.read_csv(TABLES / "wage_survey.csv")
    assert "Rows: 3,000" in r.output and f"mean {ref.wage.mean():,.2f}" in r.output
    assert len(list(tmp_path.glob("*.png"))) >= 2
    r = CliRunner().invoke(cli, ["summarize", str(TABLES / "wage_survey.csv"), "--out", str(tmp_path), "--json"])
    data = json.loads(r.output)
    assert data["profile"]["rows"] == 3000
    assert data["profile"]["column_profiles"][-1]["stats"]["mean"] == pytest.approx(ref.wage.mean())


def test_cli_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    from bot.cli import cli

    bad = tmp_path / "page.csv"
    bad.write_text("<!DOCTYPE html><html><body>Sign in to Slack</body></html>")
    r = CliRunner().invoke(cli, ["summarize", str(bad)])
    assert r.exit_code == 1 and "files:read" in r.output and "Traceback" not in r.output


def test_cli_question_uses_the_query_module(tmp_path: Path) -> None:
    from bot.cli import cli

    r = CliRunner().invoke(cli, ["summarize", str(TABLES / "superstore_orders.csv"), "--out", str(tmp_path),
                                 "--question", "total Sales by Region", "--json"])
    assert r.exit_code == 0, r.output
    ref = pd.read_csv(TABLES / "superstore_orders.csv").groupby("Region").Sales.sum()
    rows = json.loads(r.output)["rows"]
    got = {row["Region"]: next(v for k, v in row.items() if k != "Region") for row in rows}
    assert got == pytest.approx(ref.to_dict())


def test_escape_cell() -> None:
    from generation.reports.safe import escape_cell

    assert [escape_cell(v) for v in ("=1+2", "+A1", "-A1", "@x", "\tx", "-12.5", "plain", 3.5, -2)] == [
        "'=1+2", "'+A1", "'-A1", "'@x", "'\tx", "-12.5", "plain", 3.5, -2]


def test_zip_that_is_not_a_workbook() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(TableError, match="not an Excel workbook"):
        load_table(buf.getvalue(), "x.xlsx")


def test_numeric_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=500), "b": rng.integers(0, 100, 500)})
    t = _load(df.to_csv(index=False))
    pd.testing.assert_frame_equal(t.df, pd.read_csv(io.StringIO(df.to_csv(index=False))))


def test_facts_skip_date_part_correlations_and_say_one_row(tmp_path: Path) -> None:
    t = load_table(TABLES / "tx_housing_monthly.csv")
    p = profile(t.df)
    assert any({a, b} == {"year", "date"} for a, b, _ in p.correlations)  # the profile keeps every pair
    facts = summarize_table(t, out_dir=tmp_path).facts
    corr = [f for f in facts if "correlate" in f]
    assert corr and not any("year" in f or "date" in f for f in corr)
    ref = pd.read_csv(TABLES / "tx_housing_monthly.csv")
    assert f"sales and volume correlate: Pearson r = {ref[['sales', 'volume']].corr().iat[0, 1]:.2f}" in facts
    one = summarize_table(_load("k,c\n" + "\n".join(f"{i},x{i}" for i in range(5))), out_dir=tmp_path)
    assert "c: 5 distinct; most common x0 (1 row, 20.00%)" in one.facts
