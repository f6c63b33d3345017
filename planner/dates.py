"""Deadline phrases in English and Chinese, resolved against a given today.

Conventions (weeks run Monday to Sunday):
- "Friday", "by Friday", "周五前": the next Friday on or after today (said on a Friday, it means today).
- "this Friday", "本周五", "这周五": the Friday of the current week; once that day has passed, the next one.
- "next Friday", "下周五": the Friday of next week. On Thursday 2026-12-03 that is 2026-12-11, not the
  day after; this is what "下周五" always means, so both languages agree.
- "end of the week", "EOW": this week's Friday (a working week; the next Friday once it has passed).
- "next week" / "下周" alone: Friday of next week; "next month" / "下个月" alone: the last day of next month.
- A date without a year ("by Jan 5", "12/20", "12月20日") that has passed this year rolls to next year; an
  explicit year is kept as written. "12/20" is month/day; "20/12" (first number over 12) is day/month.
- "end of Q1": the quarter's last day, next year's once this year's has passed; "end of the quarter": the
  current quarter's last day.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadlineMatch:
    """A resolved date and where its phrase sits in the text (text[start:end] == phrase)."""

    date: dt.date
    start: int
    end: int
    phrase: str
    marked: bool = False  # "by", "before", "前": the phrase is explicitly a deadline


_Resolver = Callable[[re.Match[str], dt.date], "dt.date | None"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3,
}  # fmt: skip
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_DEADLINE_WORDS = {"by", "before", "until", "till", "due", "no later than", "within"}

# ASCII-only word edges, so "12/20前" and "明天Friday" still match next to Chinese characters.
_B0 = r"(?<![A-Za-z0-9_])"
_B1 = r"(?![A-Za-z0-9_])"
_EN_PRE = (
    r"(?:" + _B0 + r"(?P<pre>by|before|until|till|due(?:\s+(?:by|on))?|no\s+later\s+than|on|at|for|within)"
    r"\s+(?:the\s+)?)?"
)
_CN_PRE = r"(?P<pre>截止到|截至|截止|在|于)?"
_CN_POST = r"(?P<post>之前|以前|前|为止|截止|之内|以内|内)?"
_WD_EN = r"(?P<wd>" + "|".join(_WEEKDAYS) + r")"
_MON_EN = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_CN_NUM = r"[0-9]{1,2}|[一二两三四五六七八九十]{1,3}"


def _cn_int(text: str) -> int:
    """Parse 0-99 written in digits or Chinese numerals ("十二", "二十五", "两")."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text]


def _en_int(text: str) -> int:
    text = re.sub(r"\s+", " ", text.lower())
    return int(text) if text.isdigit() else _NUMBER_WORDS[text]


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _quarter_end(year: int, quarter: int) -> dt.date:
    return _month_end(year, quarter * 3)


def _week_day(today: dt.date, weekday: int, weeks_ahead: int) -> dt.date:
    """The given weekday of the week `weeks_ahead` weeks from the current Monday-first week."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday + dt.timedelta(weeks=weeks_ahead, days=weekday)


def _this_or_next(today: dt.date, weekday: int) -> dt.date:
    day = _week_day(today, weekday, 0)
    return day if day >= today else day + dt.timedelta(weeks=1)


def _month_day(today: dt.date, month: int, day: int, year: int | None) -> dt.date | None:
    """A calendar date; without a year it is this year's, or next year's once this year's has passed."""
    try:
        if year is not None:
            return dt.date(year if year >= 100 else 2000 + year, month, day)
        date = dt.date(today.year, month, day)
        return date if date >= today else dt.date(today.year + 1, month, day)
    except ValueError:
        return None


def _add_units(today: dt.date, n: int, unit: str) -> dt.date:
    unit = unit.lower()
    if unit.startswith(("business", "working", "工作")):
        day, left = today, n
        while left > 0:
            day += dt.timedelta(days=1)
            left -= day.weekday() < 5
        return day
    if unit.startswith(("week", "周", "星期", "礼拜")):
        return today + dt.timedelta(weeks=n)
    if unit.startswith(("month", "个月")):
        return _add_months(today, n)
    return today + dt.timedelta(days=n)


def _end_of(today: dt.date, unit: str, ahead: int) -> dt.date:
    """Last day of the current (ahead=0) or following (ahead=1) week, month, quarter or year."""
    if unit == "week":
        return _week_day(today, 4, ahead) if ahead else _this_or_next(today, 4)
    if unit == "month":
        first = _add_months(today.replace(day=1), ahead)
        return _month_end(first.year, first.month)
    if unit == "quarter":
        index = (today.month - 1) // 3 + ahead
        return _quarter_end(today.year + index // 4, index % 4 + 1)
    return dt.date(today.year + ahead, 12, 31)


# ---- resolvers for each rule (match, today) -> date | None ----


def _r_en_weekday(m: re.Match[str], today: dt.date) -> dt.date:
    weekday = _WEEKDAYS.index(m["wd"].lower())
    rel = (m["rel"] or "").lower().split()
    if "next" in rel or m["nextweek"]:
        return _week_day(today, weekday, 1)
    return _this_or_next(today, weekday)  # "this Friday", "coming Friday" and a bare "Friday" agree


def _r_en_month_day(m: re.Match[str], today: dt.date) -> dt.date | None:
    month = _MONTHS[m["mon"].lower()[:3]]
    return _month_day(today, month, int(m["day"]), int(m["year"]) if m["year"] else None)


def _r_iso(m: re.Match[str], today: dt.date) -> dt.date | None:
    return _month_day(today, int(m["mon"]), int(m["day"]), int(m["year"]))


def _r_slash(m: re.Match[str], today: dt.date) -> dt.date | None:
    a, b = int(m["a"]), int(m["b"])
    month, day = (b, a) if a > 12 >= b else (a, b)
    return _month_day(today, month, day, int(m["year"]) if m["year"] else None)


def _r_relative_day(m: re.Match[str], today: dt.date) -> dt.date:
    word = re.sub(r"\s+", " ", m["word"].lower())
    offsets = {"today": 0, "tonight": 0, "eod": 0, "end of day": 0, "end of the day": 0, "tomorrow": 1,
               "the day after tomorrow": 2, "day after tomorrow": 2,
               "今天": 0, "今日": 0, "今晚": 0, "明天": 1, "明日": 1, "明早": 1, "后天": 2, "大后天": 3}  # fmt: skip
    return today + dt.timedelta(days=offsets[word])


def _r_past_day(m: re.Match[str], today: dt.date) -> dt.date:
    """"by yesterday", "昨天前": a deadline already past, kept so the plan can flag it."""
    return today - dt.timedelta(days=1)


def _r_en_in(m: re.Match[str], today: dt.date) -> dt.date:
    return _add_units(today, _en_int(m["n"]), m["unit"])


def _r_cn_in(m: re.Match[str], today: dt.date) -> dt.date:
    return _add_units(today, _cn_int(m["n"]), m["unit"])


def _r_en_end(m: re.Match[str], today: dt.date) -> dt.date:
    unit = m["unit"].lower()
    ahead = 1 if (m["which"] or "").strip().lower() == "next" else 0
    return _end_of(today, unit, ahead)


def _r_abbrev(m: re.Match[str], today: dt.date) -> dt.date:
    unit = {"eow": "week", "eom": "month", "eoq": "quarter", "eoy": "year"}[m["abbr"].lower()]
    return _end_of(today, unit, 0)


def _r_quarter(m: re.Match[str], today: dt.date) -> dt.date:
    quarter = _cn_int(m["q"])
    if m.groupdict().get("year"):
        return _quarter_end(int(m["year"]), quarter)
    end = _quarter_end(today.year, quarter)
    return end if end >= today else _quarter_end(today.year + 1, quarter)


def _r_en_next(m: re.Match[str], today: dt.date) -> dt.date:
    return _end_of(today, m["unit"].lower(), 0 if m["which"].lower() == "this" else 1)


def _r_cn_weekday(m: re.Match[str], today: dt.date) -> dt.date:
    weekday = _CN_WEEKDAY[m["wd"]] if not m["wd"].isdigit() else int(m["wd"]) - 1
    rel = m["rel"] or ""
    if rel.startswith("下下"):
        return _week_day(today, weekday, 2)
    if rel.startswith("下"):
        return _week_day(today, weekday, 1)
    return _this_or_next(today, weekday)


def _r_cn_date(m: re.Match[str], today: dt.date) -> dt.date | None:
    return _month_day(today, _cn_int(m["mon"]), _cn_int(m["day"]), int(m["year"]) if m["year"] else None)


def _r_cn_day(m: re.Match[str], today: dt.date) -> dt.date | None:
    """Day-of-month "25号": this month's 25th, or next month's once it has passed."""
    day = _cn_int(m["day"])
    for ahead in (0, 1, 2):
        first = _add_months(today.replace(day=1), ahead)
        if day <= calendar.monthrange(first.year, first.month)[1] and first.replace(day=day) >= today:
            return first.replace(day=day)
    return None


def _r_cn_end(m: re.Match[str], today: dt.date) -> dt.date:
    unit = {"月": "month", "年": "year", "季": "quarter", "周": "week"}[m["unit"][0]]
    return _end_of(today, unit, 1 if (m["rel"] or "").startswith(("下", "明")) else 0)


def _r_cn_week(m: re.Match[str], today: dt.date) -> dt.date:
    ahead = 1 if m["rel"].startswith("下") else 0
    if m["unit"] in ("周", "星期", "礼拜"):
        return _end_of(today, "week", ahead)
    return _end_of(today, "month", ahead)


def _rule(pattern: str, resolve: _Resolver) -> tuple[re.Pattern[str], _Resolver]:
    return re.compile(pattern, re.IGNORECASE), resolve


_RULES: list[tuple[re.Pattern[str], _Resolver]] = [
    _rule(
        _EN_PRE
        + _B0
        + r"(?:(?P<rel>next|this|this\s+coming|coming)\s+)?"
        + _WD_EN
        + r"(?P<nextweek>\s+(?:of\s+)?next\s+week)?"
        + _B1,
        _r_en_weekday,
    ),
    _rule(
        _EN_PRE + _B0 + _MON_EN + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{4}))?" + _B1,
        _r_en_month_day,
    ),
    _rule(
        _EN_PRE
        + _B0
        + r"(?:the\s+)?(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
        + _MON_EN
        + r"(?:,?\s+(?P<year>\d{4}))?"
        + _B1,
        _r_en_month_day,
    ),
    _rule(
        _EN_PRE + _B0 + r"(?P<year>\d{4})[-/.](?P<mon>\d{1,2})[-/.](?P<day>\d{1,2})" + _B1 + _CN_POST, _r_iso
    ),
    _rule(
        _EN_PRE
        + r"(?<![A-Za-z0-9_/.])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<year>\d{4}|\d{2}))?"
        + r"(?![A-Za-z0-9_/])(?!\s+of\b)"
        + _CN_POST,
        _r_slash,
    ),  # "3/4 of the budget" is a fraction
    _rule(
        _EN_PRE
        + _B0
        + r"(?P<word>today|tonight|eod|end\s+of\s+(?:the\s+)?day|(?:the\s+)?day\s+after\s+tomorrow"
        r"|tomorrow)" + _B1,
        _r_relative_day,
    ),
    _rule(  # only as a deadline: "fixed yesterday" is no deadline, "by yesterday" is a late one
        r"(?<!day )" + _B0 + r"(?P<pre>by|before|until|till|due(?:\s+(?:by|on))?|no\s+later\s+than)\s+"
        r"(?P<word>yesterday)" + _B1,
        _r_past_day,
    ),
    _rule(
        _B0
        + r"(?P<pre>in|within)\s+(?P<n>\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven"
        r"|twelve|a\s+couple\s+of|a\s+few)\s+(?P<unit>(?:business\s+|working\s+)?days?|weeks?|months?)"
        r"(?:['’]?\s+time)?" + _B1,
        _r_en_in,
    ),
    _rule(
        _B0 + r"(?P<n>\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
        r"(?P<unit>(?:business\s+|working\s+)?days?|weeks?|months?)\s+from\s+(?:now|today)" + _B1,
        _r_en_in,
    ),
    _rule(
        _EN_PRE + _B0 + r"(?:the\s+)?end\s+of\s+(?:the\s+)?(?P<which>this\s+|next\s+|current\s+)?"
        r"(?P<unit>week|month|quarter|year)" + _B1,
        _r_en_end,
    ),
    _rule(_EN_PRE + _B0 + r"(?P<abbr>eow|eom|eoq|eoy)" + _B1, _r_abbrev),
    _rule(
        _EN_PRE + _B0 + r"(?:the\s+)?end\s+of\s+(?:the\s+)?q(?P<q>[1-4])(?:\s+(?P<year>\d{4}))?" + _B1,
        _r_quarter,
    ),
    _rule(
        _B0 + r"(?P<pre>by|before|until)\s+(?:the\s+)?(?P<unit>week|month|quarter|year)[- ]end" + _B1,
        lambda m, today: _end_of(today, m["unit"].lower(), 0),
    ),
    _rule(_EN_PRE + _B0 + r"(?P<which>next|this)\s+(?P<unit>week|month)" + _B1, _r_en_next),
    # Chinese
    _rule(
        _CN_PRE
        + r"(?P<rel>下下个?|下个?|本|这个?|这一)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
        + _CN_POST,
        _r_cn_weekday,
    ),
    _rule(
        _CN_PRE
        + r"(?:(?P<year>\d{4})年)?(?P<mon>"
        + _CN_NUM
        + r")月(?P<day>"
        + _CN_NUM
        + r")[日号]"
        + _CN_POST,
        _r_cn_date,
    ),
    _rule(_CN_PRE + r"(?<![月0-9一二两三四五六七八九十])(?P<day>" + _CN_NUM + r")号" + _CN_POST, _r_cn_day),
    _rule(_CN_PRE + r"(?P<word>大后天|后天|明天|明日|明早|今天|今日|今晚)" + _CN_POST, _r_relative_day),
    _rule(r"(?P<word>昨天|昨日)(?P<post>之前|以前|前|截止)", _r_past_day),
    _rule(
        r"(?P<n>" + _CN_NUM + r")(?:个)?(?P<unit>工作日|天|日|周|星期|礼拜|个月)(?P<post>之内|以内|内)",
        _r_cn_in,
    ),
    _rule(
        _CN_PRE + r"(?P<rel>下个?|本|这个?|明)?(?P<unit>月底|月末|年底|年末|季度末|季度底|季末)" + _CN_POST,
        _r_cn_end,
    ),
    _rule(_CN_PRE + r"(?P<rel>本|这|这个)(?P<unit>周)(?P<post>内|之内|以内)", _r_cn_week),
    _rule(_CN_PRE + r"(?P<rel>下个?|下一个?)(?P<unit>周|星期|礼拜|月)" + _CN_POST, _r_cn_week),
    _rule(_CN_PRE + r"第(?P<q>[一二三四1-4])季度(?:末|底|结束)" + _CN_POST, _r_quarter),
]


def _is_marked(m: re.Match[str]) -> bool:
    groups = m.groupdict()
    pre = re.sub(r"\s+", " ", (groups.get("pre") or "").lower())
    post = groups.get("post") or ""
    return (pre.split(" ")[0] in _DEADLINE_WORDS or pre.startswith("截") or pre in ("in",)
            or post in ("之前", "以前", "前", "为止", "截止", "之内", "以内", "内"))  # fmt: skip


def find_deadlines(text: str, today: dt.date) -> list[DeadlineMatch]:
    """Every date phrase in text, resolved against today, non-overlapping, in reading order."""
    found: list[DeadlineMatch] = []
    for pattern, resolve in _RULES:
        for m in pattern.finditer(text):
            date = resolve(m, today)
            if date is not None:
                found.append(DeadlineMatch(date, m.start(), m.end(), m.group(0), _is_marked(m)))
    kept: list[DeadlineMatch] = []
    for match in sorted(found, key=lambda d: (d.start - d.end, d.start)):  # longest first
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    return sorted(kept, key=lambda d: d.start)


def parse_deadline(text: str, today: dt.date) -> DeadlineMatch | None:
    """The request's deadline: the first phrase marked as one ("by", "before", "前"), else the first date."""
    matches = find_deadlines(text, today)
    if not matches:
        return None
    marked = [m for m in matches if m.marked]
    chosen = (marked or matches)[0]
    log.debug("deadline %r -> %s", chosen.phrase, chosen.date)
    return chosen


def impossible_dates(text: str, today: dt.date) -> list[str]:
    """Date phrases that name no real day ("by Feb 30", "2月30日"), so the caller can say so instead of guessing.

    A bare "25/40" is more often a ratio than a date, so numeric day/month pairs count only when marked ("by").
    """
    kept = find_deadlines(text, today)
    bad: list[str] = []
    for pattern, resolve in _RULES:
        for m in pattern.finditer(text):
            if resolve is _r_slash and not _is_marked(m):
                continue
            phrase = m.group(0).strip()
            free = all(m.end() <= k.start or m.start() >= k.end for k in kept)
            if free and phrase not in bad and resolve(m, today) is None:
                bad.append(phrase)
    return bad


def strip_dates(text: str, today: dt.date) -> str:
    """text without any of its date phrases (spaces collapsed), for topic extraction and matching."""
    out, last = [], 0
    for match in find_deadlines(text, today):
        out.append(text[last : match.start])
        last = match.end
    out.append(text[last:])
    return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
