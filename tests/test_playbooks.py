"""Playbooks: the shipped library's content, loading errors, matching with the real embedder, adaptation."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from planner.playbooks import (
    FALLBACK_NAME,
    PLAYBOOK_DIR,
    SKILLS,
    Playbook,
    PlaybookError,
    PlaybookLibrary,
    extract_topic,
    load_playbooks,
    plan_from_playbook,
)
from planner.types import KINDS

THU = dt.date(2026, 12, 3)

# Paraphrased requests written for this test, none copied from a playbook's examples.
HELD_OUT = [
    ("Prepare the Q3 sales report for the board meeting next Friday", "sales-report"),
    ("Can you pull together last quarter's revenue numbers into a report for the execs?", "sales-report"),
    ("We need the H1 bookings summary for the leadership offsite", "sales-report"),
    ("plan: launch the pricing page by Dec 20", "web-page-launch"),
    ("Make a new landing page for our partner program", "web-page-launch"),
    ("Bring the new billing feature to market with a proper launch", "product-launch"),
    ("We're hiring a frontend developer, set up the process", "hiring"),
    ("Find and hire a new office manager by end of Q1", "hiring"),
    ("Our new data scientist starts on Monday, get her set up", "employee-onboarding"),
    ("John is leaving the company at the end of the month, handle his exit", "employee-offboarding"),
    ("Organise a two-day sales kickoff event in January", "event-planning"),
    ("The API went down for two hours this morning, write up what happened and fix it", "incident-response"),
    ("The search box returns no results for accented names, please fix", "bug-fix"),
    ("Move all our user data from MongoDB to Postgres", "data-migration"),
    ("Have someone pentest our public website", "security-audit"),
    ("Make sure we are GDPR compliant before the EU launch", "compliance-review"),
    ("Run an email and social campaign for the holiday sale", "marketing-campaign"),
    ("Get release 5.2 out the door next week", "software-release"),
    ("Ask our users what they think of the onboarding flow with a short questionnaire", "customer-survey"),
    ("Draft the marketing budget for next year", "budget-planning"),
    ("Close the books for Q4", "month-end-close"),
    ("Choose a new accounting software vendor", "vendor-selection"),
    ("Put together a workshop to teach the team Excel", "training-program"),
    ("Translate our onboarding emails into Korean", "localization"),
    ("A new enterprise client signed yesterday, get them live", "customer-onboarding"),
    ("Write our monthly product newsletter", "newsletter"),
    ("Answer the government's request for proposal on cloud hosting", "rfp-response"),
    ("We are relocating to a new office downtown in February", "office-move"),
    ("Get ready for the quarterly board of directors meeting", "board-meeting"),
    ("Kick off annual performance appraisals for the whole company", "performance-review"),
    ("Dig into the data to see why weekly active users dropped", "data-analysis"),
    ("Give the company a fresh look with a new logo", "rebrand"),
    ("Build a deck to pitch our platform to a big retailer", "sales-pitch-deck"),
    ("下周五前准备第三季度销售报告", "sales-report"),
    ("招聘一名后端工程师", "hiring"),
    ("月底结账", "month-end-close"),
    ("下周三前上线新的产品定价页面", "web-page-launch"),
    ("新来的设计师下周一入职，帮忙安排一下", "employee-onboarding"),
    ("昨晚数据库宕机了，写一份复盘", "incident-response"),
    ("把订单数据迁移到新的数据仓库", "data-migration"),
    ("组织一次全员的信息安全意识培训", "training-program"),
    ("给客户发一份满意度问卷", "customer-survey"),
    ("编制下一年度的部门预算", "budget-planning"),
    ("把官网翻译成日文", "localization"),
    ("筹备下个月的董事会", "board-meeting"),
    ("分析一下上个月用户流失的原因", "data-analysis"),
]


@pytest.fixture(scope="session")
def playbooks() -> list[Playbook]:
    return load_playbooks()


# The real MiniLM embedder: about 3 s to load and 2-3 s to embed the library on two idle cores, more on a
# busy machine, so the tests that use it are marked slow (they still run in `make test` and CI).
slow = pytest.mark.slow


@pytest.fixture(scope="session")
def library(playbooks: list[Playbook]) -> PlaybookLibrary:
    from planner.embed import default_embedder

    return PlaybookLibrary(playbooks, default_embedder())


def _is_zh(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# ---- the shipped library ----


def test_library_size_and_fallback(playbooks: list[Playbook]) -> None:
    names = {p.name for p in playbooks}
    assert FALLBACK_NAME in names
    assert len(names - {FALLBACK_NAME}) >= 28


@pytest.mark.parametrize("path", sorted(PLAYBOOK_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_playbook_content(path: Path) -> None:
    (playbook,) = load_playbooks(path)
    assert playbook.name == path.stem
    english = [e for e in playbook.examples if not _is_zh(e)]
    chinese = [e for e in playbook.examples if _is_zh(e)]
    assert 4 <= len(english) <= 8 and 2 <= len(chinese) <= 4
    assert any(_is_zh(k) for k in playbook.keywords) and any(not _is_zh(k) for k in playbook.keywords)
    assert 4 <= len(playbook.steps) <= 9
    assert len({s.title for s in playbook.steps}) == len(playbook.steps)
    for step in playbook.steps:
        assert set(step.skills) <= set(SKILLS), step.id
        assert step.kind in KINDS
        assert "{topic}" in step.title and "{topic}" in step.title_zh, step.id
        assert step.description and 0 < step.estimate_hours <= 40


# ---- loading errors ----

GOOD = """\
name: tiny
title: Tiny
description: A tiny playbook.
examples: [do a tiny thing]
keywords: [tiny]
steps:
  - {id: a, title: "Start {topic}", skills: [writing], estimate_hours: 1, kind: text}
  - {id: b, title: "Finish {topic}", skills: [qa], estimate_hours: 2, depends_on: [a]}
"""


def _write(tmp_path: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path: Path) -> None:
    (playbook,) = load_playbooks(_write(tmp_path, GOOD))
    assert [s.id for s in playbook.steps] == ["a", "b"]
    assert playbook.steps[1].depends_on == ("a",) and playbook.steps[1].kind == "human"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("depends_on: [a]", "depends_on: [zz]", "steps[1].depends_on: unknown step id 'zz'"),
        ("id: b,", "id: a,", "steps[1].id: duplicate step id 'a'"),
        ("skills: [qa]", "skills: []", "steps[1]: skills"),
        ("kind: text", "kind: video", "steps[0]: kind: 'video'"),
        ("estimate_hours: 2", "estimate_hours: -2", "steps[1]: estimate_hours"),
        ("estimate_hours: 2", "estimate_hours: two", "steps[1]: estimate_hours: expected a number"),
        ("title: Tiny", "titel: Tiny", "unknown field 'titel'"),
        ("examples: [do a tiny thing]", "examples: []", "examples"),
        (
            "depends_on: [a]}",
            "depends_on: [a]}\n  - {id: c, title: x, skills: [qa], estimate_hours: 1, depends_on: [c]}",
            "steps[2].depends_on: step 'c' depends on itself",
        ),
        ("steps:\n", "steps: []\nx:\n", "unknown field 'x'"),
        ('title: "Start {topic}"', "title: Start\n    title_zh: {topic}开始", "title_zh"),
        ("name: tiny", "name: [tiny", "cannot read the YAML"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(PlaybookError) as err:
        load_playbooks(path)
    assert "tiny.yaml" in str(err.value) and message in str(err.value)


def test_cycle_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace("kind: text}", "kind: text, depends_on: [b]}")
    with pytest.raises(PlaybookError, match=r"tiny.yaml: steps: depends_on forms a cycle among a, b"):
        load_playbooks(_write(tmp_path, text))


def test_not_a_mapping_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="expected a mapping"):
        load_playbooks(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(PlaybookError, match="missing: no such playbook file or folder"):
        load_playbooks(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlaybookError, match="No playbook files"):
        load_playbooks(tmp_path / "empty")


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "one.yaml")
    _write(tmp_path, GOOD, "two.yaml")
    with pytest.raises(PlaybookError, match="two.yaml: name: 'tiny' is already used by"):
        load_playbooks(tmp_path)


def test_library_needs_a_fallback(tmp_path: Path) -> None:
    playbooks = load_playbooks(_write(tmp_path, GOOD))

    class NoEmbedder:
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            raise AssertionError("not reached")

    with pytest.raises(PlaybookError, match="No fallback playbook named 'general-project'"):
        PlaybookLibrary(playbooks, NoEmbedder())


# ---- matching with the real embedder ----


@slow
def test_held_out_accuracy(library: PlaybookLibrary, capsys: pytest.CaptureFixture[str]) -> None:
    misses = []
    for request, expected in HELD_OUT:
        got = library.best(request, today=THU).name
        if got != expected:
            misses.append(f"{request!r}: {got} (want {expected})")
    english = [r for r, _ in HELD_OUT if not _is_zh(r)]
    accuracy = 1 - len(misses) / len(HELD_OUT)
    with capsys.disabled():
        print(f"\nplaybook match accuracy {accuracy:.1%} on {len(HELD_OUT)} held-out requests "
              f"({len(english)} EN, {len(HELD_OUT) - len(english)} ZH); misses: {misses}")  # fmt: skip
    assert accuracy >= 0.9, misses


@slow
@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("下周五前准备第三季度销售报告", "sales-report"),
        ("招聘一名后端工程师", "hiring"),
        ("月底结账", "month-end-close"),
        ("Prepare the Q3 sales report for the board meeting next Friday", "sales-report"),
        ("plan: launch the pricing page by Dec 20", "web-page-launch"),
    ],
)
def test_key_requests(library: PlaybookLibrary, request_text: str, expected: str) -> None:
    ranked = library.match(request_text, k=3, today=THU)
    assert len(ranked) == 3
    assert ranked[0][0].name == expected
    assert ranked[0][1] > ranked[1][1]


@slow
@pytest.mark.parametrize(
    "request_text",
    ["Buy flowers for grandma", "asdf qwerty", "What is the capital of France?", "给我讲个笑话", ""],
)
def test_nothing_fits_gives_the_fallback(library: PlaybookLibrary, request_text: str) -> None:
    ranked = library.match(request_text, k=3)
    assert ranked[0][0].name == FALLBACK_NAME
    assert len(ranked) == 3 and FALLBACK_NAME not in [p.name for p, _ in ranked[1:]]


# ---- topic extraction and plans ----


@pytest.mark.parametrize(
    ("request_text", "topic"),
    [
        ("plan: launch the pricing page by Dec 20", "the pricing page"),
        (
            "Prepare the Q3 sales report for the board meeting next Friday",
            "the Q3 sales report for the board meeting",
        ),
        ("<@U123ABC> plan: hire a backend engineer by end of Q1", "a backend engineer"),
        ("/plan Please organize the team offsite next month, thanks!", "the team offsite"),
        ("Can you help me migrate the CRM to HubSpot ASAP?", "the CRM to HubSpot"),
        ("Find and hire a new office manager", "a new office manager"),
        ("John is leaving at the end of the month, handle his exit", "John is leaving"),
        ("Get release 5.2 out the door next week", "release 5.2 out the door"),
        ("下周五前准备第三季度销售报告", "第三季度销售报告"),
        ("招聘一名后端工程师", "后端工程师"),
        ("月底结账", "结账"),
        ("筹备下个月的董事会", "董事会"),
        ("请在12月20号之前完成", "完成"),
        ("新来的设计师下周一入职，帮忙安排一下", "新来的设计师入职"),
        ("", ""),
    ],
)
def test_extract_topic(request_text: str, topic: str) -> None:
    assert extract_topic(request_text, today=THU) == topic


def test_long_request_gives_a_short_topic() -> None:
    topic = extract_topic("plan: write " + "a very long request " * 1000, today=THU)
    assert len(topic) <= 81 and topic.endswith("…")


def _check_dag(plan_subtasks: tuple) -> None:  # type: ignore[type-arg]
    ids = [s.id for s in plan_subtasks]
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    for subtask in plan_subtasks:
        assert all(int(dep) < int(subtask.id) for dep in subtask.depends_on)  # topological order


def test_plan_from_playbook(playbooks: list[Playbook]) -> None:
    web = next(p for p in playbooks if p.name == "web-page-launch")
    plan = plan_from_playbook(web, "plan: launch the pricing page by Dec 20", deadline=dt.date(2026, 12, 20))
    assert plan.source == "playbook:web-page-launch"
    assert plan.deadline == dt.date(2026, 12, 20)
    assert plan.title == "Web page launch: the pricing page"
    assert plan.subtasks[0].title == "Write the brief and success metric for the pricing page"
    assert all("{topic}" not in s.title for s in plan.subtasks)
    _check_dag(plan.subtasks)
    by_title = {s.title: s for s in plan.subtasks}
    build = by_title["Build the pricing page"]
    assert [plan.subtasks[int(d) - 1].title for d in build.depends_on] == [
        "Write the copy for the pricing page",
        "Design the layout and visuals for the pricing page",
    ]
    assert {s.kind for s in plan.subtasks} >= {"text", "image", "human"}


def test_chinese_request_gets_chinese_titles(playbooks: list[Playbook]) -> None:
    report = next(p for p in playbooks if p.name == "sales-report")
    plan = plan_from_playbook(report, "下周五前准备第三季度销售报告", deadline=dt.date(2026, 12, 11))
    assert plan.subtasks[1].title == "导出第三季度销售报告所需的销售数据"
    assert plan.title == "第三季度销售报告"
    assert plan.deadline == dt.date(2026, 12, 11)


def test_explicit_topic_and_empty_topic(playbooks: list[Playbook]) -> None:
    hiring = next(p for p in playbooks if p.name == "hiring")
    plan = plan_from_playbook(hiring, "whatever", deadline=None, topic="a staff engineer")
    assert plan.subtasks[1].title == "Write the job description for a staff engineer"
    plan = plan_from_playbook(hiring, "by Friday", deadline=None)  # no topic left: the playbook's title
    assert plan.subtasks[0].title == "Define the role profile for hire for a role"
    assert plan.deadline is None


@pytest.mark.parametrize("request_text", ["plan: do it for the ACME account by Friday", "月底前搞定"])
def test_every_playbook_gives_a_valid_plan(playbooks: list[Playbook], request_text: str) -> None:
    for playbook in playbooks:
        plan = plan_from_playbook(playbook, request_text, deadline=THU)
        assert 4 <= len(plan.subtasks) <= 9 and plan.source == f"playbook:{playbook.name}"
        _check_dag(plan.subtasks)
        assert len({s.title for s in plan.subtasks}) == len(plan.subtasks)
