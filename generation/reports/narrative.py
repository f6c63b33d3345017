"""A short narrative worded by the text model from the facts alone, with every invented number removed.

The model only rephrases. After it answers, each sentence is split into the numbers it states (digits with
thousands separators, decimals, percents, k/M suffixes, number words, dates) and a sentence survives only if
every one of them equals a number in the facts, at the precision the sentence wrote it ("1,235" may stand for
1234.6, "1,200" may not). With no model, or nothing left, the narrative is a template built from the facts.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_DATE = re.compile(r"(?<![\d.])(\d{4})[-/年](\d{1,2})(?:[-/月](\d{1,2})日?)?(?![\d])")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−+]?)(?P<cur>[$€£¥])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<suf>%|percent\b|per cent\b|k\b|K\b|thousand\b|m\b|M\b|million\b|mn\b|bn\b|b\b|B\b|billion\b|"
    r"万|亿))?(?![\w.]*\d)")
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
          "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
          "dozen": 12, "half": 0.5, "twice": 2, "double": 2, "triple": 3, "quarter": 0.25, "third": 1 / 3}
_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)
_MULT = {"k": 1e3, "K": 1e3, "thousand": 1e3, "m": 1e6, "M": 1e6, "million": 1e6, "mn": 1e6, "bn": 1e9,
         "b": 1e9, "B": 1e9, "billion": 1e9, "万": 1e4, "亿": 1e8}
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n+")


@dataclass
class Stated:
    """A number as a sentence states it: the value and how many decimals it was written with."""

    value: float
    decimals: int
    percent: bool = False
    text: str = ""


@dataclass
class Narrative:
    text: str
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    source: str = "template"  # model | template


def stated_numbers(text: str) -> tuple[list[Stated], list[tuple[int, int, int | None]]]:
    """Numbers and dates stated in text. Dates come back separately as (year, month, day|None)."""
    dates = [(int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
             for m in _DATE.finditer(text)]
    rest = _DATE.sub(" ", text)
    out: list[Stated] = []
    for m in _NUMBER.finditer(rest):
        raw = m.group("num").replace(",", "")
        dec = len(raw.split(".")[1]) if "." in raw else 0
        value = float(raw)
        suf = (m.group("suf") or "").strip()
        if m.group("sign") in ("-", "−"):
            value = -value
        pct = suf in ("%", "percent", "per cent")
        if suf in _MULT:
            value *= _MULT[suf]
            dec = dec - int(round(math.log10(_MULT[suf])))
        out.append(Stated(value, dec, pct, m.group(0)))
    for m in _WORD_RE.finditer(rest):
        out.append(Stated(float(_WORDS[m.group(1).lower()]), 0 if _WORDS[m.group(1).lower()] >= 1 else 6,
                          False, m.group(1)))
    return out, dates


def fact_numbers(facts: list[str]) -> tuple[list[float], set[tuple[int, int, int | None]]]:
    """Every number in the facts (percents also as fractions and vice versa), and every date and its month."""
    values: list[float] = []
    dates: set[tuple[int, int, int | None]] = set()
    for f in facts:
        nums, ds = stated_numbers(f)
        for n in nums:
            values.append(n.value)
            if n.percent:
                values.append(n.value / 100)
        for y, mo, d in ds:
            dates.update({(y, mo, d), (y, mo, None)})
            values.append(float(y))
    return values, dates


def _matches(s: Stated, allowed: list[float]) -> bool:
    for f in allowed:
        candidates = (f, f * 100) if s.percent else (f,)
        for c in candidates:
            if s.decimals >= 0:
                if round(c, s.decimals) == round(s.value, s.decimals) or math.isclose(c, s.value, rel_tol=1e-9):
                    return True
            else:  # "1.2 million": written to 10**-decimals
                q = 10.0 ** (-s.decimals)
                if round(c / q) == round(s.value / q):
                    return True
    return False


def sentence_ok(sentence: str, allowed: list[float], dates: set[tuple[int, int, int | None]]) -> bool:
    nums, ds = stated_numbers(sentence)
    if any(d not in dates for d in ds):
        return False
    return all(_matches(n, allowed) for n in nums)


def filter_sentences(text: str, facts: list[str]) -> tuple[list[str], list[str]]:
    """Split text into sentences; keep those whose every number is among the facts. Returns (kept, dropped)."""
    allowed, dates = fact_numbers(facts)
    kept: list[str] = []
    dropped: list[str] = []
    for sent in (s.strip() for s in _SENTENCE.split(text or "")):
        if not sent:
            continue
        (kept if sentence_ok(sent, allowed, dates) else dropped).append(sent)
    return kept, dropped


def template_narrative(facts: list[str]) -> str:
    """The no-model wording: the first few facts as sentences (they carry only fact numbers by construction)."""
    lines = [f.rstrip(".") + "." for f in facts[:5]]
    return " ".join(lines)


SYSTEM = ("You summarize a data table for a busy colleague in 2-4 plain sentences. Use ONLY the facts given. "
          "Do not compute, round differently, estimate or invent any number; copy numbers exactly as written "
          "in the facts. No lists, no headings.")


def narrate(facts: list[str], text_model: Any | None = None) -> Narrative:
    """Ask the text model to word the facts; drop sentences with numbers not among the facts."""
    if text_model is not None and facts:
        try:
            raw = text_model.complete(
                [{"role": "system", "content": SYSTEM},
                 {"role": "user", "content": "Facts:\n" + "\n".join(f"- {f}" for f in facts) + "\n\nSummary:"}],
                max_tokens=200, temperature=0.2)
        except Exception as e:  # the model is optional: a template keeps the summary coming
            log.warning("narrative model failed, using template err=%r", e)
        else:
            kept, dropped = filter_sentences(raw, facts)
            if dropped:
                log.info("narrative sentences dropped (numbers not in facts) n=%d first=%r", len(dropped),
                         dropped[0][:120])
            if kept:
                return Narrative(" ".join(kept), kept, dropped, "model")
            fallback = template_narrative(facts)
            return Narrative(fallback, [fallback], dropped, "template")
    text = template_narrative(facts)
    return Narrative(text, [text], [], "template")
