"""Deadline phrases against a fixed today: Thursday 2026-12-03 unless a row says otherwise."""

from __future__ import annotations

import datetime as dt

import pytest

from planner.dates import find_deadlines, parse_deadline, strip_dates

THU = dt.date(2026, 12, 3)  # a Thursday
D = dt.date

CASES = [
    # weekdays: bare and "this" = next one on or after today; "next" = that day of next week
    ("next Friday", D(2026, 12, 11)),
    ("this Friday", D(2026, 12, 4)),
    ("Friday", D(2026, 12, 4)),
    ("by Friday", D(2026, 12, 4)),
    ("Friday next week", D(2026, 12, 11)),
    ("next Monday", D(2026, 12, 7)),
    ("this Wednesday", D(2026, 12, 9)),  # this week's Wednesday has passed: the next one
    ("on Thursday", THU),
    # calendar dates
    ("by Dec 20", D(2026, 12, 20)),
    ("December 20th", D(2026, 12, 20)),
    ("20 Dec", D(2026, 12, 20)),
    ("the 20th of December", D(2026, 12, 20)),
    ("Dec. 20, 2027", D(2027, 12, 20)),
    ("2026-12-20", D(2026, 12, 20)),
    ("2026/12/20", D(2026, 12, 20)),
    ("12/20", D(2026, 12, 20)),
    ("20/12", D(2026, 12, 20)),  # first number over 12: day/month
    ("12/20/2027", D(2027, 12, 20)),
    ("by Jan 5", D(2027, 1, 5)),  # passed this year: next year
    ("1/5", D(2027, 1, 5)),
    ("Dec 3", THU),  # today does not roll
    ("Nov 30, 2026", D(2026, 11, 30)),  # an explicit year is kept even when past
    # relative days
    ("today", THU),
    ("EOD", THU),
    ("tomorrow", D(2026, 12, 4)),
    ("the day after tomorrow", D(2026, 12, 5)),
    ("in 3 days", D(2026, 12, 6)),
    ("in 2 weeks", D(2026, 12, 17)),
    ("within a week", D(2026, 12, 10)),
    ("in a couple of weeks", D(2026, 12, 17)),
    ("in 5 business days", D(2026, 12, 10)),
    ("in two months", D(2027, 2, 3)),
    ("3 weeks from now", D(2026, 12, 24)),
    # ends of periods
    ("end of the month", D(2026, 12, 31)),
    ("by the end of the month", D(2026, 12, 31)),
    ("end of next month", D(2027, 1, 31)),
    ("end of the week", D(2026, 12, 4)),
    ("end of next week", D(2026, 12, 11)),
    ("EOW", D(2026, 12, 4)),
    ("EOM", D(2026, 12, 31)),
    ("EOQ", D(2026, 12, 31)),
    ("end of Q1", D(2027, 3, 31)),
    ("end of Q4", D(2026, 12, 31)),
    ("end of Q3 2027", D(2027, 9, 30)),
    ("end of the quarter", D(2026, 12, 31)),
    ("end of next quarter", D(2027, 3, 31)),
    ("end of the year", D(2026, 12, 31)),
    ("by month end", D(2026, 12, 31)),
    ("next week", D(2026, 12, 11)),
    ("next month", D(2027, 1, 31)),
    # Chinese
    ("下周五", D(2026, 12, 11)),
    ("下星期五", D(2026, 12, 11)),
    ("下下周一", D(2026, 12, 14)),
    ("本周五", D(2026, 12, 4)),
    ("这周五", D(2026, 12, 4)),
    ("周五前", D(2026, 12, 4)),
    ("星期天", D(2026, 12, 6)),
    ("明天", D(2026, 12, 4)),
    ("后天", D(2026, 12, 5)),
    ("大后天", D(2026, 12, 6)),
    ("月底", D(2026, 12, 31)),
    ("本月底", D(2026, 12, 31)),
    ("下个月底", D(2027, 1, 31)),
    ("下月底", D(2027, 1, 31)),
    ("年底前", D(2026, 12, 31)),
    ("12月20日", D(2026, 12, 20)),
    ("12月20号之前", D(2026, 12, 20)),
    ("十二月二十日", D(2026, 12, 20)),
    ("1月5日", D(2027, 1, 5)),
    ("2027年3月1日", D(2027, 3, 1)),
    ("25号前", D(2026, 12, 25)),
    ("2号前", D(2027, 1, 2)),
    ("3天内", D(2026, 12, 6)),
    ("三天内", D(2026, 12, 6)),
    ("两周内", D(2026, 12, 17)),
    ("一周之内", D(2026, 12, 10)),
    ("3个工作日内", D(2026, 12, 8)),
    ("两个月内", D(2027, 2, 3)),
    ("本周内", D(2026, 12, 4)),
    ("下周", D(2026, 12, 11)),
    ("第一季度末", D(2027, 3, 31)),
    ("季度末", D(2026, 12, 31)),
]


@pytest.mark.parametrize(("phrase", "expected"), CASES, ids=[c[0] for c in CASES])
def test_phrase_alone(phrase: str, expected: dt.date) -> None:
    match = parse_deadline(phrase, THU)
    assert match is not None, phrase
    assert match.date == expected
    assert match.phrase == phrase  # the whole phrase is the span, prepositions included


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Prepare the Q3 sales report for the board meeting next Friday", "next Friday", D(2026, 12, 11)),
        ("plan: launch the pricing page by Dec 20", "by Dec 20", D(2026, 12, 20)),
        ("Hire a backend engineer by the end of Q1 please", "by the end of Q1", D(2027, 3, 31)),
        ("下周五前准备第三季度销售报告", "下周五前", D(2026, 12, 11)),
        ("请在12月20号之前完成", "在12月20号之前", D(2026, 12, 20)),
        ("月底结账", "月底", D(2026, 12, 31)),
        ("12/20前上线定价页面", "12/20前", D(2026, 12, 20)),
        ("John leaves at the end of the month", "at the end of the month", D(2026, 12, 31)),
    ],
)
def test_phrase_in_a_request(text: str, phrase: str, expected: dt.date) -> None:
    match = parse_deadline(text, THU)
    assert match is not None
    assert (match.phrase, match.date) == (phrase, expected)
    assert text[match.start : match.end] == phrase


@pytest.mark.parametrize(
    ("today", "phrase", "expected"),
    [
        (D(2026, 12, 4), "Friday", D(2026, 12, 4)),  # said on a Friday: today
        (D(2026, 12, 4), "next Friday", D(2026, 12, 11)),
        (D(2026, 11, 30), "next Friday", D(2026, 12, 11)),  # Monday: next week's, not this week's
        (D(2026, 12, 5), "end of the week", D(2026, 12, 11)),  # Saturday: the coming Friday
        (D(2026, 12, 5), "本周五", D(2026, 12, 11)),
        (D(2026, 12, 31), "end of the month", D(2026, 12, 31)),
        (D(2027, 1, 31), "in 1 month", D(2027, 2, 28)),  # clamped to the month's last day
        (D(2027, 4, 1), "end of Q1", D(2028, 3, 31)),
        (D(2027, 1, 2), "in 1 business day", D(2027, 1, 4)),  # Saturday -> Monday
    ],
)
def test_relative_to_other_days(today: dt.date, phrase: str, expected: dt.date) -> None:
    match = parse_deadline(phrase, today)
    assert match is not None and match.date == expected


@pytest.mark.parametrize(
    "text",
    [
        "Prepare the Q3 sales report",
        "Run the month-end close",
        "Take 3/4 of the budget",
        "Split it 50/50",
        "Feb 30",
        "2月30日",
        "Hire 2 engineers in Q1",
        "",
    ],
)
def test_no_deadline(text: str) -> None:
    assert parse_deadline(text, THU) is None


def test_a_marked_phrase_wins_over_an_earlier_bare_one() -> None:
    match = parse_deadline("Review on Monday, ship the report by Dec 20", THU)
    assert match is not None and match.date == D(2026, 12, 20)


def test_first_date_when_none_is_marked() -> None:
    match = parse_deadline("Meeting next Friday, then workshop on Dec 20", THU)
    assert match is not None and match.date == D(2026, 12, 11)


def test_find_deadlines_prefers_the_longest_phrase() -> None:
    found = find_deadlines("end of next month", THU)
    assert [m.phrase for m in found] == ["end of next month"]


def test_strip_dates_removes_every_phrase() -> None:
    text = "Prepare the report by Friday for the meeting next Friday"
    assert strip_dates(text, THU) == "Prepare the report for the meeting"
    assert strip_dates("下周五前准备第三季度销售报告", THU) == "准备第三季度销售报告"


def test_long_text_is_handled_quickly() -> None:
    text = "word " * 4000 + "by Dec 20"
    match = parse_deadline(text, THU)
    assert match is not None and match.date == D(2026, 12, 20)
