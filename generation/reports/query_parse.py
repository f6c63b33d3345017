"""Rules that turn the common question forms (English and Chinese) into a QuerySpec.

Words are mapped to columns by exact name, then fuzzy name, then sentence-embedding similarity, and to
category values (so "in the West" becomes a filter on the column holding "West"). A question whose words
cannot all be placed is not guessed at: `parse_question` says which word it could not place.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from generation.reports.query_spec import (
    Aggregate,
    Filter,
    Func,
    GroupBy,
    Part,
    QuerySpec,
    Sort,
    is_numeric,
    looks_like_dates,
)

log = logging.getLogger(__name__)

MAX_EMBEDDED = 1000  # wider tables match names only: embedding 10,000 headers would take minutes on a CPU
EMBED_MIN = 0.45  # all-MiniLM cosine; unrelated words score up to ~0.3 against column names (measured)
ROW_WORDS = {"", "row", "rows", "record", "records", "entry", "entries", "line", "lines", "order", "orders",
             "item", "items", "transaction", "transactions", "sale"}
PARTS: dict[str, Part] = {"year": "year", "yearly": "year", "annual": "year", "quarter": "quarter",
                          "quarterly": "quarter", "month": "month", "monthly": "month", "week": "week",
                          "weekly": "week", "day": "day", "daily": "day", "date": "day"}
# A few business words whose column names differ (tried after the words themselves, slightly discounted).
SYNONYMS = {"order value": ["total", "revenue", "sales", "amount", "price"], "revenue": ["sales", "total"],
            "sales": ["revenue", "total"], "income": ["revenue", "wage"], "amount": ["total", "sales"],
            "earnings": ["profit", "revenue"], "products": ["product", "name", "item name", "sub category"],
            "product": ["name", "item name", "sub category"], "customers": ["customer id"],
            "order amount": ["total", "revenue", "sales", "price"]}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
           "nine": 9, "ten": 10, "twenty": 20}
AGGS: list[tuple[str, Func]] = [
    (r"(?:number|count) of (?:distinct|unique|different)|how many (?:distinct|unique|different)|"
     r"(?:distinct|unique) (?:count of )?", "count_distinct"),
    (r"total|sum of|sum|overall", "sum"),
    (r"average|avg|mean", "mean"),
    (r"median", "median"),
    (r"minimum|min|lowest|smallest", "min"),
    (r"maximum|max|highest|largest|biggest", "max"),
    (r"number of|count of|count|how many", "count"),
]
LEAD = re.compile(r"^(?:(?:what|which)(?:'s| is| are| was| were)?|show(?: me)?|give(?: me)?|list|tell me|"
                  r"compute|calculate|find|get|display|plot|chart|please)\b\s*", re.I)
# (symbols, words, op): words must stand alone ("shipping" holds "in").
OPS = [("", "between", "between"), (">=|=>|≥", "is at least|at least", ">="),
       ("<=|=<|≤", "is at most|at most", "<="),
       ("!=|<>", "is not|isn't|not", "!="),
       (">", "is (?:greater|more|higher) than|(?:greater|more|higher) than|above|over|exceeds", ">"),
       ("<", "is (?:less|lower|smaller) than|(?:less|lower|smaller) than|below|under", "<"),
       ("", "contains|includes|has|like", "contains"), ("", "in|is one of", "in"),
       ("==|=", "equals|is equal to|is", "=")]


class Unplaced(ValueError):
    """A word of the question matches no column or value; str() names it."""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-./:]+", " ", str(text))).strip().casefold()


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _tokens(text: str) -> list[str]:
    return [_singular(t) for t in _norm(text).split()]


@dataclass
class Columns:
    """The table's columns and category values, with the matchers the rules use."""

    df: pd.DataFrame
    embedder: Any = None

    def __post_init__(self) -> None:
        self.names = [str(c) for c in self.df.columns]
        self.numeric = [c for c in self.names if is_numeric(self.df[c])]
        self._dates: list[str] | None = None
        self._values: dict[str, list[tuple[str, Any]]] | None = None
        self._vectors: np.ndarray | None = None

    def dates(self) -> list[str]:
        if self._dates is None:
            self._dates = [c for c in self.names if c not in self.numeric and looks_like_dates(self.df[c])]
        return self._dates

    def match(self, phrase: str, *, numeric: bool = False) -> str:
        """The column a phrase names; Unplaced when none is close enough."""
        phrase = re.sub(r"^(?:the|a|an|all|each|every|our|of)\s+", "", phrase.strip(), flags=re.I)
        pool = self.numeric if numeric else self.names
        exact = [c for c in self.names if _norm(c) == _norm(phrase)] if numeric and phrase else []
        if exact and exact[0] not in pool:  # "total name by city": a column, but not one to add up
            have = ", ".join(pool[:10]) if pool else "none"
            raise ValueError(f"“{exact[0]}” is not a number column (number columns: {have})")
        if not pool or not phrase:
            raise Unplaced(phrase or "(nothing)")
        best, score = self._best(phrase, pool)
        for alt in SYNONYMS.get(_norm(phrase), []):
            b, s = self._best(alt, pool, embed=False)
            if s * 0.95 > score:
                best, score = b, s * 0.95
        if score < EMBED_MIN:
            raise Unplaced(phrase)
        log.debug("column for %r: %r (%.2f)", phrase, best, score)
        return best

    def _best(self, phrase: str, pool: Sequence[str], *, embed: bool = True) -> tuple[str, float]:
        scored = [(c, self._name_score(phrase, c)) for c in pool]
        best = max(scored, key=lambda cs: cs[1])
        if best[1] >= 0.8 or not embed or self.embedder is None or len(self.names) > MAX_EMBEDDED:
            return best
        sims = self._embed_scores(phrase)
        idx = {c: i for i, c in enumerate(self.names)}
        emb = max(((c, float(sims[idx[c]]) * 0.9) for c in pool), key=lambda cs: cs[1])
        return emb if emb[1] > best[1] else best

    @staticmethod
    def _name_score(phrase: str, column: str) -> float:
        p, c = _norm(phrase), _norm(column)
        if p == c:
            return 1.0
        pt, ct = _tokens(phrase), _tokens(column)
        if pt == ct:
            return 0.95
        if pt and set(pt) <= set(ct):
            return 0.9 - 0.05 * (len(ct) - len(pt))
        if ct and set(ct) <= set(pt) and len(pt) - len(ct) <= 1:
            return 0.8
        ratio = difflib.SequenceMatcher(None, p, c).ratio()
        return ratio * 0.9 if ratio >= 0.85 else 0.0

    def _embed_scores(self, phrase: str) -> np.ndarray:
        if self._vectors is None:
            self._vectors = self.embedder.encode([_norm(c) for c in self.names])
        vec = self.embedder.encode([_norm(phrase)])[0]
        return self._vectors @ vec

    def values(self) -> dict[str, list[tuple[str, Any]]]:
        """casefolded category value -> [(column, value)], text columns with at most 500 distinct values."""
        if self._values is None:
            self._values = {}
            for c in self.names:
                s = self.df[c]
                if c in self.numeric or len(self._values) > 50_000 or c in self.dates():
                    continue
                uniques = s.dropna().unique()
                if len(uniques) > 500:
                    continue
                for v in uniques:
                    key = _norm(v)
                    if len(key) >= 2:
                        self._values.setdefault(key, []).append((c, v))
        return self._values

    def match_value(self, phrase: str) -> tuple[str, Any] | None:
        """(column, value) for phrases like "West", "the West region", "region West", "furniture"."""
        words = _norm(re.sub(r"^(?:the|a|an)\s+", "", phrase.strip(), flags=re.I)).split()
        index = self.values()
        n = len(words)
        for lo, hi, col_words in ((0, n, []), (0, n - 1, words[-1:]), (1, n, words[:1])):
            key = " ".join(words[lo:hi])
            for cand in (key, _singular(key)):
                hits = index.get(cand, [])
                if col_words:
                    hits = [h for h in hits if self._name_score(col_words[0], h[0]) >= 0.8]
                if hits:
                    return hits[0]
        return None


# -- English --------------------------------------------------------------------------------------


def parse_question(question: str, cols: Columns) -> QuerySpec | None:
    """A spec for the common forms; None when the question has none of them; Unplaced for unknown words."""
    text = re.sub(r"\s+", " ", question).strip().strip("?!.。？！ ")
    if re.search(r"[\u4e00-\u9fff]", text):
        text = from_chinese(text, frozenset(cols.names))
        log.debug("chinese question read as %r", text)
    missing = _missing_form(text, cols)
    if missing is not None:
        return missing
    filters: list[Filter] = []
    text = _take_year(text, cols, filters)
    text, where = _split(text, r"\s+(?:where|whose|when|if|with|having)\s+(?=.*(?:=|<|>|\bis\b|\bcontains\b|"
                               r"\bbetween\b|\bin\s*\(|\babove\b|\bbelow\b|\bover\b|\bunder\b|\bthan\b|"
                               r"\bat least\b|"
                               r"\bat most\b))")
    if where:
        where, after = _split(where, r"\s+(?:grouped by|broken down by|by|per|for each)\s+")
        text = f"{text} by {after}" if after else text
        filters += _conditions(where, cols)
    text = LEAD.sub("", text).strip()
    text = re.sub(r"^(?:the|me)\s+", "", text, flags=re.I)
    top = re.match(r"^(top|bottom|best|worst|highest|lowest|first)\s+(-?\d+|" + "|".join(NUMBERS) + r")\s+"
                   r"(.+?)\s+(?:by|in terms of|with the (?:most|highest|largest))\s+(.+)$", text, re.I)
    if top:
        return _top(top, cols, filters)
    groups: list[GroupBy] = []
    period = re.match(r"^(monthly|yearly|annual|quarterly|weekly|daily)\s+(.+)$", text, re.I)
    if period:
        groups.append(_group(PARTS[period.group(1).lower()], cols))
        text = period.group(2)
    text, grp = _split(text, r"\s+(?:grouped by|broken down by|split by|by|per|for each|for every|in each|"
                             r"across|each)\s+")
    if grp:
        grp, tail = _split(grp, r"\s+(?:in|for|from|at|among)\s+")
        filters += _value_filter(tail, cols) if tail else []
        groups += [_group(g, cols) for g in re.split(r"\s*(?:,|\band\b|&)\s*", grp) if g]
    agg = _aggregate(text, cols, filters, grouped=bool(groups))
    if agg is None:
        return None
    return QuerySpec(filters=filters, group_by=groups[:2], aggregate=agg)


def _split(text: str, pattern: str) -> tuple[str, str]:
    parts = re.split(pattern, text, maxsplit=1, flags=re.I)
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else (text, "")


def _missing_form(text: str, cols: Columns) -> QuerySpec | None:
    forms = [
        (r"^(?:how many|count(?: the)?|number of) (?:rows|records|entries|lines)? ?"
         r"(?:have|has|with|are|where)? ?(?:no|missing|empty|blank|without|a missing|an empty|null) "
         r"(?:an? |the )?(?P<col>.+?)(?: values?)?$"),
        (r"^(?:how many|count(?: the)?|number of) (?:rows|records|entries)? ?(?:where|with) "
         r"(?:the )?(?P<col>.+?) (?:is|are) (?:missing|empty|blank|null|not set)$"),
        r"^how many (?P<col>.+?) (?:values )?(?:are|is) (?:missing|empty|blank|null)$",
        r"^(?:count )?missing (?P<col>.+?)(?: values)?$",
    ]
    for form in forms:
        m = re.match(form, text, re.I)
        if m:
            col = cols.match(m.group("col"))
            return QuerySpec(filters=[Filter(column=col, op="missing")], aggregate=Aggregate(func="count"))
    return None


def _take_year(text: str, cols: Columns, filters: list[Filter]) -> str:
    m = re.search(r"\s*\b(?:in|during|for|of|from)\s+(?:the\s+year\s+)?((?:19|20)\d{2})\b", text, re.I)
    if not m:
        return text
    year = int(m.group(1))
    exact = [c for c in cols.names if _norm(c) == "year"]
    if exact:
        filters.append(Filter(column=exact[0], op="=", value=year))
    elif cols.dates():
        filters.append(Filter(column=cols.dates()[0], op="=", value=year, part="year"))
    else:
        raise Unplaced(m.group(1))
    return (text[: m.start()] + text[m.end():]).strip()


def _conditions(where: str, cols: Columns) -> list[Filter]:
    out: list[Filter] = []
    between = re.compile(r"(.+?)\s+between\s+(\S+)\s+and\s+(\S+)", re.I)
    for part in re.split(r"\s+and\s+(?![\d.,-]+(?:\s|$))", where):
        m = between.fullmatch(part.strip())
        if m:
            out.append(Filter(column=cols.match(m.group(1)), op="between", value=[m.group(2), m.group(3)]))
            continue
        miss = re.fullmatch(r"(.+?)\s+(?:is|are)\s+(not\s+)?(?:missing|empty|blank|null)", part.strip(), re.I)
        if miss:
            op = "not_missing" if miss.group(2) else "missing"
            out.append(Filter(column=cols.match(miss.group(1)), op=op))  # type: ignore[arg-type]
            continue
        out.append(_condition(part.strip(), cols))
    return out


def _condition(part: str, cols: Columns) -> Filter:
    for symbols, words, op in OPS:
        m = re.fullmatch(rf"(.+?)\s*(?:{symbols})\s*(.+)", part, re.I) if symbols else None
        m = m or re.fullmatch(rf"(.+?)\s+(?:{words})\s+(.+)", part, re.I)
        if not m:
            continue
        col = cols.match(m.group(1))
        raw = m.group(2).strip().strip("'\"“”")
        if op == "in":
            values = [v.strip().strip("'\"") for v in re.split(r",|\bor\b", raw.strip("()[]")) if v.strip()]
            return Filter(column=col, op="in", value=values)
        return Filter(column=col, op=op, value=raw)  # type: ignore[arg-type]
    found = cols.match_value(part)
    if found:
        return Filter(column=found[0], op="=", value=found[1])
    raise Unplaced(part)


def _value_filter(tail: str, cols: Columns) -> list[Filter]:
    found = cols.match_value(tail)
    if not found:
        raise Unplaced(tail)
    return [Filter(column=found[0], op="=", value=found[1])]


def _group(phrase: str, cols: Columns) -> GroupBy:
    word = _norm(re.sub(r"^(?:the|each|every)\s+", "", phrase.strip(), flags=re.I))
    part = PARTS.get(word) or PARTS.get(_singular(word))
    exact = [c for c in cols.names if _norm(c) == word]
    if part and cols.dates() and not (exact and part in ("year", "quarter")):
        return GroupBy(column=cols.dates()[0], part=part)
    if part and not exact:
        raise Unplaced(f"{phrase} (the table has no date column)")
    return GroupBy(column=exact[0] if exact else cols.match(phrase))


TOP_MAX = 1000  # QuerySpec.limit's bound


def _top(m: re.Match[str], cols: Columns, filters: list[Filter]) -> QuerySpec:
    n = int(m.group(2)) if m.group(2).lstrip("-").isdigit() else NUMBERS[m.group(2).lower()]
    if not 1 <= n <= TOP_MAX:  # said here, not as a pydantic error on QuerySpec.limit
        raise ValueError(f"“{m.group(1)} N” needs N from 1 to {TOP_MAX:,} (asked for {n:,})")
    measure, tail = _split(m.group(4), r"\s+(?:in|for|from|at|among)\s+")
    filters += _value_filter(tail, cols) if tail else []
    agg = _aggregate(measure, cols, filters, grouped=True)
    agg = agg or Aggregate(func="sum", column=cols.match(measure, numeric=True))
    desc = m.group(1).lower() not in ("bottom", "worst", "lowest")
    return QuerySpec(filters=filters, group_by=[_group(m.group(3), cols)], aggregate=agg,
                     sort=Sort(by="value", descending=desc), limit=n)


def _aggregate(text: str, cols: Columns, filters: list[Filter], *, grouped: bool) -> Aggregate | None:
    func: Func | None = None
    for pattern, name in AGGS:
        m = re.match(rf"^(?:{pattern})\b\s*(?:of\s+)?(?:the\s+)?", text, re.I)
        if m:
            func, text = name, text[m.end():].strip()
            break
    text, tail = _split(text, r"\s+(?:in|for|from|at|among|within)\s+(?:the\s+)?")
    if tail:
        filters += _value_filter(tail, cols)
    text = re.sub(r"\s+(?:are there|is there|do we have|there are|in total|overall)$", "", text, flags=re.I)
    if func == "count":
        if _norm(text) in ROW_WORDS or _singular(_norm(text)) in ROW_WORDS:
            return Aggregate(func="count")
        # "how many customers" means distinct customers; a word naming no column is not guessed at.
        return Aggregate(func="count_distinct", column=cols.match(text))
    if func == "count_distinct":
        return Aggregate(func=func, column=cols.match(text))
    if func is not None:
        if not text and len(cols.numeric) == 1:
            return Aggregate(func=func, column=cols.numeric[0])
        return Aggregate(func=func, column=cols.match(text, numeric=True))
    if not text or not (grouped or filters):
        return None
    col = cols.match(text)
    return Aggregate(func="sum" if col in cols.numeric else "count_distinct", column=col)


# -- Chinese --------------------------------------------------------------------------------------

ZH_TERMS = {"销售额": "sales", "销售": "sales", "销量": "quantity", "利润": "profit", "地区": "region",
            "区域": "region", "产品": "product", "商品": "product", "类别": "category", "品类": "category",
            "分类": "category", "子类别": "sub category", "数量": "quantity", "价格": "price",
            "单价": "price", "收入": "revenue", "营收": "revenue", "订单金额": "order value",
            "金额": "amount",
            "客户": "customer", "国家": "country", "城市": "city", "州": "state", "邮箱": "email",
            "电子邮件": "email", "折扣": "discount",
            "状态": "status", "渠道": "channel", "支付方式": "payment method", "工资": "wage", "薪资": "wage",
            "年龄": "age", "税": "tax", "总额": "total", "尺寸": "size", "类型": "type", "名称": "name",
            "日期": "date", "细分": "segment", "客户群": "segment"}
ZH_PARTS = {"月": "month", "年": "year", "季度": "quarter", "季": "quarter", "周": "week", "星期": "week",
            "天": "day", "日": "day"}
ZH_AGGS = [("不同", "number of distinct"), ("唯一", "number of distinct"), ("平均", "average"),
           ("均值", "average"), ("中位数", "median"), ("最大", "maximum"), ("最高", "maximum"),
           ("最小", "minimum"), ("最低", "minimum"), ("总和", "total"), ("总计", "total"), ("合计", "total"),
           ("总", "total"), ("个数", "number of"), ("多少", "number of")]
ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
             "十": 10}


def _zh_term(phrase: str, keep: frozenset[str] = frozenset()) -> str:
    phrase = phrase.strip(" 的")
    if phrase in keep:
        return phrase  # the table's own (Chinese) column name
    parts = [p for p in re.split(r"[和与及、]", phrase) if p.strip()]
    if len(parts) > 1:
        return " and ".join(_zh_term(p, keep) for p in parts)
    if phrase in ZH_TERMS:
        return ZH_TERMS[phrase]
    for zh, en in sorted(ZH_TERMS.items(), key=lambda kv: -len(kv[0])):
        phrase = phrase.replace(zh, f" {en} ")
    return re.sub(r"\s+", " ", phrase).strip()


def _zh_measure(phrase: str, keep: frozenset[str] = frozenset()) -> str:
    """"平均销售额" -> "average sales"; "销售额总和" -> "total sales"; "销售额" -> "total sales"."""
    phrase = phrase.strip(" 的")
    if phrase in keep:
        return f"total {phrase}"
    for zh, en in ZH_AGGS:
        if zh in phrase:
            rest = phrase.replace(zh, "", 1).strip(" 的是")
            return f"{en} {_zh_term(rest, keep)}".strip() if rest else en
    return f"total {_zh_term(phrase, keep)}"


def from_chinese(text: str, keep: frozenset[str] = frozenset()) -> str:
    """Read the common Chinese forms as their English equivalents (column words via a small glossary)."""
    text = re.sub(r"((?:19|20)\d{2})\s*年", r" in \1 ", text).strip()
    text = re.sub(r"[，,？?。！!]", " ", text).strip()
    m = re.match(r"^(?:有)?多少(?:行|条|条记录|个记录)?(?:没有|缺少|缺失|没填)(?P<c>.+)$", text) or re.match(
        r"^(?P<c>.+?)(?:为空|缺失|是空的)的?(?:有)?多少(?:行|条)?$", text)
    if m:
        return f"how many rows have no {_zh_term(m.group('c'), keep)}"
    n_ = r"(?P<n>\d+|[一二两三四五六七八九十])(?:个|名|位|种)?"
    m = re.match(rf"^(?P<m>.+?)(?:最高|最多|最大)的前{n_}(?P<g>.+)$", text) or re.match(
        rf"^前{n_}(?P<g>.+?)(?:按|的)(?P<m>.+)$", text)
    if m:
        n = m.group("n") if m.group("n").isdigit() else ZH_DIGITS[m.group("n")]
        return f"top {n} {_zh_term(m.group('g'), keep)} by {_zh_measure(m.group('m'), keep)}"
    m = re.match(r"^按(?:照)?(?P<g>.+?)(?:统计|汇总|计算|求|分组|看)(?:的)?(?P<m>.+)$", text)
    if m:
        return f"{_zh_measure(m.group('m'), keep)} by {_zh_group(m.group('g'), keep)}"
    m = re.match(r"^(?:每个?|各个?)(?P<g>月|年|季度|季|周|星期|天|日)的?(?P<m>.+)$", text) or re.match(
        r"^(?:每个?|各个?)(?P<g>[^的]+)的(?P<m>.+)$", text)
    if m:
        return f"{_zh_measure(m.group('m'), keep)} per {_zh_group(m.group('g'), keep)}"
    m = re.match(r"^(?P<m>.+?)(?:的)?(?:总和|总计|合计|总额)$", text)
    if m:
        return f"total {_zh_term(m.group('m'), keep)}"
    return _zh_measure(text, keep) if any(zh in text for zh, _ in ZH_AGGS) else _zh_term(text, keep)


def _zh_group(phrase: str, keep: frozenset[str] = frozenset()) -> str:
    phrase = phrase.strip(" 的个")
    return ZH_PARTS.get(phrase) or _zh_term(phrase, keep)
