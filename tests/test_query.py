"""Follow-up questions: every number is checked against pandas computed here, on the shared tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from generation.reports.query import answer_question, format_table
from generation.reports.query_spec import QuerySpec
from tests.conftest import SHARED

TABLES = SHARED / "data" / "tables"


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    if not TABLES.exists():
        pytest.skip(f"{TABLES} is missing (CI lays shared/ beside the checkout)")
    names = ("superstore_orders", "pizza_sales", "global_sales_sample", "tx_housing_monthly")
    return {n: pd.read_csv(TABLES / f"{n}.csv") for n in names}


def _as_dict(table: pd.DataFrame) -> dict:
    return dict(zip(table.iloc[:, 0], table.iloc[:, -1]))


def test_total_by_group_matches_pandas(tables, embedder, tmp_path: Path) -> None:
    df = tables["superstore_orders"]
    before = df.copy()
    a = answer_question(df, "total Sales by Region", embedder=embedder, out_dir=tmp_path)
    expected = df.groupby("Region")["Sales"].sum()
    assert a.ok and a.spec["aggregate"] == {"func": "sum", "column": "Sales"}
    assert _as_dict(a.table) == pytest.approx(expected.to_dict())
    assert list(a.table.iloc[:, 0]) == list(expected.sort_values(ascending=False).index)  # largest first
    assert f"{expected['West']:,.2f}" in a.text and "```" in a.text
    assert a.chart is not None and a.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pd.testing.assert_frame_equal(df, before)  # read-only


def test_words_map_to_columns_by_meaning(tables, embedder) -> None:
    df = tables["superstore_orders"]
    a = answer_question(df, "What is the total revenue by region?", embedder=embedder)
    assert a.ok and a.spec["aggregate"]["column"] == "Sales" and a.spec["group_by"][0]["column"] == "Region"
    b = answer_question(df, "average earnings per segment", embedder=embedder)
    assert b.ok and b.spec["aggregate"] == {"func": "mean", "column": "Profit"}
    assert _as_dict(b.table) == pytest.approx(df.groupby("Segment")["Profit"].mean().to_dict())


def test_top_n_with_year_filter(tables, embedder) -> None:
    df = tables["global_sales_sample"]
    a = answer_question(df, "top 5 products by revenue in 2022", embedder=embedder)
    totals = df[df["year"] == 2022].groupby("product_id")["revenue"].sum()
    expected = totals.sort_values(ascending=False).head(5)
    assert a.ok and a.spec["limit"] == 5
    assert list(a.table["product_id"]) == list(expected.index)
    assert list(a.table.iloc[:, -1]) == pytest.approx(list(expected.values))
    assert f"{(df['year'] == 2022).sum():,} of 15,000 rows" in a.text


def test_average_per_month_on_a_date_column(tables, embedder) -> None:
    df = tables["pizza_sales"]
    a = answer_question(df, "average order value per month", embedder=embedder)
    months = pd.to_datetime(df["date"]).dt.to_period("M").astype(str)
    expected = df.groupby(months)["price"].mean()
    assert a.ok and a.spec["group_by"] == [{"column": "date", "part": "month"}]
    assert list(a.table.iloc[:, 0]) == sorted(expected.index)  # in time order
    assert _as_dict(a.table) == pytest.approx(expected.to_dict())


def test_missing_count(tables, embedder) -> None:
    df = tables["global_sales_sample"]
    a = answer_question(df, "how many rows have no city?", embedder=embedder)
    assert a.ok and int(a.table.iat[0, 0]) == int(df["city"].isna().sum()) > 0
    b = answer_question(df, "城市缺失的有多少行", embedder=embedder)
    assert b.ok and int(b.table.iat[0, 0]) == int(df["city"].isna().sum())


def test_chinese_questions(tables, embedder) -> None:
    store = tables["superstore_orders"]
    a = answer_question(store, "按地区统计销售额", embedder=embedder)
    assert a.ok and _as_dict(a.table) == pytest.approx(store.groupby("Region")["Sales"].sum().to_dict())
    sales = tables["global_sales_sample"]
    b = answer_question(sales, "每月平均订单金额", embedder=embedder)
    months = pd.to_datetime(sales["timestamp"]).dt.to_period("M").astype(str)
    assert b.ok and b.spec["aggregate"]["func"] == "mean"
    col = b.spec["aggregate"]["column"]
    assert col in ("total", "revenue")
    assert _as_dict(b.table) == pytest.approx(sales.groupby(months)[col].mean().to_dict())
    d = answer_question(store, "每个地区的平均利润", embedder=embedder)
    assert d.ok and _as_dict(d.table) == pytest.approx(store.groupby("Region")["Profit"].mean().to_dict())
    e = answer_question(store, "按类别和地区统计利润", embedder=embedder)
    both = store.groupby(["Category", "Region"])["Profit"].sum()
    assert e.ok and [g["column"] for g in e.spec["group_by"]] == ["Category", "Region"]
    assert {(r[0], r[1]): r[2] for r in e.table.itertuples(index=False)} == pytest.approx(both.to_dict())
    c = answer_question(sales, "收入最高的前3个国家", embedder=embedder)
    top = sales.groupby("country")["revenue"].sum().sort_values(ascending=False).head(3)
    assert c.ok and list(c.table["country"]) == list(top.index)


def test_filters_from_where_and_from_category_values(tables, embedder) -> None:
    df = tables["superstore_orders"]
    a = answer_question(df, "sum of Sales where Region = West", embedder=embedder)
    assert a.ok and a.table.iat[0, 0] == pytest.approx(df.loc[df["Region"] == "West", "Sales"].sum())
    b = answer_question(df, "total sales in the West by category", embedder=embedder)
    west = df[df["Region"] == "West"].groupby("Category")["Sales"].sum()
    assert b.ok and _as_dict(b.table) == pytest.approx(west.to_dict())
    c = answer_question(df, "sum of profit where discount > 0.2 and category = Furniture", embedder=embedder)
    rows = df[(df["Discount"] > 0.2) & (df["Category"] == "Furniture")]
    assert c.ok and c.table.iat[0, 0] == pytest.approx(rows["Profit"].sum())
    e = answer_question(df, "sum of sales where state in (California, Texas)", embedder=embedder)
    two = df.loc[df["State"].isin(["California", "Texas"]), "Sales"].sum()
    assert e.ok and e.table.iat[0, 0] == pytest.approx(two)
    f = answer_question(df, "count rows where city contains york", embedder=embedder)
    assert f.ok and f.table.iat[0, 0] == df["City"].str.contains("York").sum()
    d = answer_question(df, "how many distinct cities by region", embedder=embedder)
    assert d.ok and _as_dict(d.table) == df.groupby("Region")["City"].nunique().to_dict()


def test_date_filters_and_periods(tables, embedder) -> None:
    df = tables["global_sales_sample"]
    stamps = pd.to_datetime(df["timestamp"])
    a = answer_question(df, "total revenue where timestamp >= 2023-01-01", embedder=embedder)
    assert a.ok and a.table.iat[0, 0] == pytest.approx(df.loc[stamps >= "2023-01-01", "revenue"].sum())
    b = answer_question(df, "weekly revenue", embedder=embedder)
    weeks = stamps.dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d")
    assert b.ok and _as_dict(b.table) == pytest.approx(df.groupby(weeks)["revenue"].sum().to_dict())
    c = answer_question(tables["superstore_orders"], "total sales by month", embedder=embedder)
    assert not c.ok and "no date column" in c.text


def test_empty_result_names_the_known_values(tables, embedder) -> None:
    df = tables["superstore_orders"]
    a = answer_question(df, "sum of Sales where Region = Atlantis", embedder=embedder)
    assert a.ok and a.text.startswith("No rows match Region = Atlantis")
    assert "Central, East, South, West" in a.text


@pytest.mark.parametrize("question", ["why did sales drop?", "asdf qwerty", "", "predict next year's revenue",
                                      "total Sales by Region; __import__('os').system('touch pwned')"])
def test_questions_outside_the_spec_get_the_forms(tables, embedder, question: str, tmp_path: Path) -> None:
    a = answer_question(tables["superstore_orders"], question, embedder=embedder)
    assert not a.ok and a.text.startswith("I can't answer that yet") and a.table is None
    assert "total <number column> by <column>" in a.text and "Sales" in a.text  # forms and columns
    assert not (tmp_path / "pwned").exists()


def test_unknown_column_is_named(tables, embedder) -> None:
    a = answer_question(tables["superstore_orders"], "total Sales by flavour", embedder=embedder)
    assert not a.ok and "flavour" in a.text
    b = answer_question(tables["superstore_orders"], "how many rows have no email", embedder=embedder)
    assert not b.ok and "email" in b.text


def test_text_table_is_capped(tables, embedder) -> None:
    df = tables["superstore_orders"]
    a = answer_question(df, "total Sales by City", embedder=embedder)
    assert a.ok and f"… {df['City'].nunique() - 20:,} more" in a.text
    assert len(a.table) == df["City"].nunique()


def test_format_table_aligns_numbers() -> None:
    text = format_table(pd.DataFrame({"year": [2023, 2024], "total": [1234.5, 7.0]}))
    lines = text.splitlines()
    assert lines[1].split() == ["year", "total"] and "2023" in lines[3] and "1,234.50" in lines[3]
    assert lines[3].index("1,234.50") + len("1,234.50") == lines[4].index("7.00") + len("7.00")


def test_spec_schema_rejects_bad_specs() -> None:
    with pytest.raises(ValidationError):
        QuerySpec.model_validate({"aggregate": {"func": "exec", "column": "Sales"}})
    with pytest.raises(ValidationError):
        QuerySpec.model_validate({"aggregate": {"func": "sum"}})  # sum of what
    with pytest.raises(ValidationError):
        QuerySpec.model_validate({"aggregate": {"func": "count"}, "filters": [{"column": "a", "op": "between",
                                                                              "value": 3}]})
    with pytest.raises(ValidationError):
        QuerySpec.model_validate({"aggregate": {"func": "count"}, "code": "import os"})


class ScriptedText:
    """A real TextModel: replays queued replies and records the prompts it got."""

    def __init__(self, *replies: str) -> None:
        self.replies, self.prompts = list(replies), []

    def complete(self, messages, *, max_tokens=256, temperature=0.7, top_p=0.95, stop=None) -> str:  # type: ignore[no-untyped-def]
        self.prompts.append(messages)
        return self.replies.pop(0)


def test_model_only_fills_the_spec(tables, embedder) -> None:
    df = tables["superstore_orders"]
    spec = {"filters": [{"column": "segment", "op": "=", "value": "Consumer"}], "group_by": [],
            "aggregate": {"func": "max", "column": "Profit"}}
    model = ScriptedText("Here you go:\n" + json.dumps(spec))
    a = answer_question(df, "which consumer deal made the most money", embedder=embedder, text_model=model)
    assert a.ok and a.spec["filters"][0]["column"] == "Segment"
    assert a.table.iat[0, 0] == pytest.approx(df.loc[df["Segment"] == "Consumer", "Profit"].max())
    assert "Region" in model.prompts[0][1]["content"]
    # Rules that work never ask the model.
    unused = ScriptedText()
    assert answer_question(df, "total Sales by Region", embedder=embedder, text_model=unused).ok
    assert unused.prompts == []


@pytest.mark.parametrize("reply", [
    "import os\nos.system('touch pwned')",
    '{"aggregate": {"func": "sum", "column": "Secret"}}',
    '{"aggregate": {"func": "sum", "column": "Region"}}',
    '{"aggregate": {"func": "sum", "column": "Sales"}, "code": "df.drop()"}',
])
def test_model_replies_that_do_not_validate_are_refused(tables, embedder, reply: str, tmp_path: Path) -> None:
    a = answer_question(tables["superstore_orders"], "which consumer deal made the most money",
                        embedder=embedder, text_model=ScriptedText(reply))
    assert not a.ok and "I can't answer that yet" in a.text
    assert not (tmp_path / "pwned").exists()
