"""Reviewed playbooks: the plan the planner falls back to when the LLM's output fails validation.

Playbooks are YAML files in planner/playbooks/. A PlaybookLibrary picks the one closest to a request
(MiniLM embeddings for English, character bigrams and keywords for Chinese, which MiniLM's vocabulary
mostly maps to [UNK]), and plan_from_playbook turns it into a DraftPlan about the request's topic.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from planner.dates import strip_dates
from planner.embed import Embedder
from planner.errors import TaskwrightError
from planner.types import KINDS, DraftPlan, Kind, Subtask

log = logging.getLogger(__name__)

PLAYBOOK_DIR = Path(__file__).with_name("playbooks")
FALLBACK_NAME = "general-project"
# The skill names the shipped playbooks use; the optimizer matches them to members' skills by embedding.
SKILLS: tuple[str, ...] = (
    "backend", "copywriting", "customer success", "data analysis", "data engineering", "design", "devops",
    "finance", "frontend", "hr", "legal", "localization", "marketing", "operations", "presentation",
    "product management", "project management", "qa", "recruiting", "research", "sales", "security", "sql",
    "writing",
)  # fmt: skip
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9][a-z0-9+#./-]*")
_EN_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the and or of for to in on by at with from our we us i me my you your this that these "
        "those is are be it its as next new all up get please need needs want can could would should "
        "will let lets do make some",
    )
)


class PlaybookError(TaskwrightError):
    """A playbook file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class PlaybookStep:
    """One step of a playbook; title and title_zh may contain {topic}."""

    id: str
    title: str
    description: str
    skills: tuple[str, ...]
    estimate_hours: float
    depends_on: tuple[str, ...] = ()
    kind: Kind = "human"
    title_zh: str = ""


@dataclass(frozen=True)
class Playbook:
    """A reviewed workflow: what it is for, how requests for it sound, and its steps (a DAG)."""

    name: str
    title: str
    description: str
    examples: tuple[str, ...]
    keywords: tuple[str, ...]
    steps: tuple[PlaybookStep, ...]


# ---- loading and validation ----


def load_playbooks(path: Path | str | None = None) -> list[Playbook]:
    """Load and validate every *.yaml playbook in a folder (default: the shipped library) or one file."""
    path = Path(path) if path is not None else PLAYBOOK_DIR
    if not path.exists():
        raise PlaybookError(f"{path}: no such playbook file or folder.")
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    if not files:
        raise PlaybookError(f"No playbook files (*.yaml) found in {path}.")
    playbooks: list[Playbook] = []
    seen: dict[str, Path] = {}
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PlaybookError(f"{file}: cannot read the YAML: {exc}") from exc
        playbook = _parse_playbook(data, str(file))
        if playbook.name in seen:
            raise PlaybookError(f"{file}: name: {playbook.name!r} is already used by {seen[playbook.name]}")
        seen[playbook.name] = file
        playbooks.append(playbook)
    log.debug("loaded %d playbooks from %s", len(playbooks), path)
    return playbooks


def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key)
    if (
        not isinstance(value, kind)
        or isinstance(value, bool)
        or (isinstance(value, (str, list)) and not value)
    ):
        expected = "a number" if kind == (int, float) else f"a non-empty {getattr(kind, '__name__', kind)}"
        raise PlaybookError(f"{where}: {key}: expected {expected}, got {value!r}")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _field(data, key, list, where)
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise PlaybookError(f"{where}: {key}[{i}]: expected a non-empty string, got {value!r}")
    return tuple(v.strip() for v in values)


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PlaybookError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _parse_step(data: Any, where: str) -> PlaybookStep:
    if not isinstance(data, dict):
        raise PlaybookError(f"{where}: expected a mapping with id, title, skills, ..., got {data!r}")
    _check_keys(data, {"id", "title", "title_zh", "description", "skills", "estimate_hours",
                       "depends_on", "kind"}, where)  # fmt: skip
    hours = _field(data, "estimate_hours", (int, float), where)
    if not 0 < hours <= 200:
        raise PlaybookError(f"{where}: estimate_hours: {hours} is outside 0-200 hours")
    kind = data.get("kind", "human")
    if kind not in KINDS:
        raise PlaybookError(f"{where}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    depends = data.get("depends_on") or []
    if not isinstance(depends, list):
        raise PlaybookError(f"{where}: depends_on: expected a list of step ids, got {depends!r}")
    title_zh = data.get("title_zh", "")
    if not isinstance(title_zh, str):
        raise PlaybookError(
            f"{where}: title_zh: expected a string (quote it if it starts with {{), got {title_zh!r}"
        )
    return PlaybookStep(
        id=str(_field(data, "id", (str, int), where)),
        title=_field(data, "title", str, where).strip(),
        description=str(data.get("description") or "").strip(),
        skills=_strings(data, "skills", where),
        estimate_hours=float(hours),
        depends_on=tuple(str(d) for d in depends),
        kind=kind,
        title_zh=title_zh.strip(),
    )


def _parse_playbook(data: Any, where: str) -> Playbook:
    if not isinstance(data, dict):
        raise PlaybookError(
            f"{where}: expected a mapping with name, title, steps, ..., got {type(data).__name__}"
        )
    _check_keys(data, {"name", "title", "description", "examples", "keywords", "steps"}, where)
    raw_steps = _field(data, "steps", list, where)
    steps = tuple(_parse_step(s, f"{where}: steps[{i}]") for i, s in enumerate(raw_steps))
    _check_dag(steps, where)
    return Playbook(
        name=_field(data, "name", str, where).strip(),
        title=_field(data, "title", str, where).strip(),
        description=str(data.get("description") or "").strip(),
        examples=_strings(data, "examples", where),
        keywords=_strings(data, "keywords", where) if data.get("keywords") is not None else (),
        steps=steps,
    )


def _check_dag(steps: Sequence[PlaybookStep], where: str) -> None:
    """Step ids unique, dependencies known and no cycles; the error names the offending step."""
    ids = [s.id for s in steps]
    for i, step in enumerate(steps):
        if step.id in ids[:i]:
            raise PlaybookError(f"{where}: steps[{i}].id: duplicate step id {step.id!r}")
        for dep in step.depends_on:
            if dep not in ids:
                raise PlaybookError(
                    f"{where}: steps[{i}].depends_on: unknown step id {dep!r} (known: {', '.join(ids)})"
                )
            if dep == step.id:
                raise PlaybookError(f"{where}: steps[{i}].depends_on: step {step.id!r} depends on itself")
    _topological(steps, where)


def _topological(steps: Sequence[PlaybookStep], where: str = "playbook") -> list[PlaybookStep]:
    """Steps in dependency order, keeping file order among ready steps; raises on a cycle."""
    done: set[str] = set()
    order: list[PlaybookStep] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if set(s.depends_on) <= done]
        if not ready:
            cycle = ", ".join(s.id for s in pending)
            raise PlaybookError(f"{where}: steps: depends_on forms a cycle among {cycle}")
        order.append(ready[0])
        done.add(ready[0].id)
        pending.remove(ready[0])
    return order


# ---- matching ----


def _stem(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def _tokens(text: str) -> list[str]:
    """Stemmed English words without stop words, plus Chinese character bigrams (a lone character as is)."""
    text = text.lower()
    tokens = []
    for run in _CJK_RUN.findall(text):
        tokens += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    for word in _WORD.findall(_CJK_RUN.sub(" ", text)):
        word = word.strip("./-")
        if word and word not in _EN_STOP:
            tokens.append(_stem(word))
    return tokens


def _latin_share(text: str) -> float:
    """Share of the text that MiniLM can read: Latin letters against Chinese characters (one ~ a word)."""
    latin = len(re.findall(r"[A-Za-z]", text))
    cjk = len(_CJK.findall(text)) * 3
    return latin / (latin + cjk) if latin + cjk else 1.0


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Matches the keyword in lower-cased text: a substring for Chinese, whole words for English."""
    keyword = keyword.lower()
    if _CJK.search(keyword):
        return re.compile(re.escape(keyword))
    return re.compile(r"(?<![a-z0-9])" + re.escape(keyword).replace(r"\ ", r"[\s-]+") + r"(?![a-z0-9])")


def _playbook_text(playbook: Playbook) -> str:
    steps = " ".join(f"{s.title} {s.title_zh}".replace("{topic}", " ") for s in playbook.steps)
    return " ".join([playbook.title, playbook.description, *playbook.examples, *playbook.keywords, steps])


class PlaybookLibrary:
    """Picks the playbook closest to a request; embeddings are computed once, when the library is built.

    Score = s·embedding + (1 - s)·lexical + keyword_weight·keywords, where s is the request's share of
    Latin text (MiniLM reads English only), lexical is a TF-IDF cosine over words and Chinese character
    bigrams, and keywords is the IDF-weighted share of the playbook's keywords found in the request.
    """

    def __init__(
        self,
        playbooks: Sequence[Playbook],
        embedder: Embedder,
        *,
        fallback: str = FALLBACK_NAME,
        threshold: float = 0.35,
        threshold_zh: float = 0.15,
        keyword_weight: float = 0.5,
    ) -> None:
        by_name = {p.name: p for p in playbooks}
        if fallback not in by_name:
            raise PlaybookError(
                f"No fallback playbook named {fallback!r}: add {fallback}.yaml to the library."
            )
        self.fallback = by_name[fallback]
        self.playbooks = [p for p in playbooks if p.name != fallback]
        if not self.playbooks:
            raise PlaybookError("The playbook library has only the fallback playbook; add at least one more.")
        self._embedder = embedder
        self.threshold = threshold
        self.threshold_zh = threshold_zh
        self.keyword_weight = keyword_weight
        # MiniLM maps Chinese mostly to [UNK], so Chinese texts would only add noise to the vectors.
        pairs = [(i, t) for i, p in enumerate(self.playbooks) for t in (p.title, p.description, *p.examples)]
        owners, texts = zip(*[(i, t) for i, t in pairs if _latin_share(t) > 0.5], strict=True)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        vectors = embedder.encode([texts[i] for i in by_length])
        self._vectors = vectors[np.argsort(by_length)]
        self._owners = np.array(owners)
        self._build_lexical()

    def _build_lexical(self) -> None:
        docs = [Counter(_tokens(_playbook_text(p))) for p in self.playbooks]
        n = len(docs)
        df = Counter(token for doc in docs for token in doc)
        self._idf = {token: math.log((1 + n) / (1 + count)) + 1.0 for token, count in df.items()}
        self._docs = [self._tfidf(doc) for doc in docs]
        lowered = [_playbook_text(p).lower() for p in self.playbooks]
        self._keywords: list[list[tuple[re.Pattern[str], float]]] = []
        for playbook in self.playbooks:
            weighted = []
            for keyword in dict.fromkeys(k.lower() for k in playbook.keywords):
                pattern = _keyword_pattern(keyword)
                count = sum(1 for text in lowered if pattern.search(text)) or 1
                weighted.append((pattern, math.log((1 + n) / count) / math.log(1 + n)))
            self._keywords.append(weighted)

    def _tfidf(self, counts: Counter[str]) -> dict[str, float]:
        vec = {t: (1 + math.log(c)) * self._idf.get(t, 0.0) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items() if v}

    def scores(self, request: str, *, today: dt.date | None = None) -> tuple[np.ndarray, float]:
        """One score per playbook (fallback excluded, self.playbooks order) and the bar a match must reach.

        The bar is lower for Chinese, where only lexical evidence counts and cosines run lower.
        """
        text = strip_dates(request[:2000], today or dt.date.today()) or request[:2000]
        share = _latin_share(text)
        if not text.strip():
            return np.zeros(len(self.playbooks)), self.threshold
        sims = self._vectors @ self._embedder.encode([text])[0]
        emb = np.full(len(self.playbooks), -1.0)
        np.maximum.at(emb, self._owners, sims)
        query = self._tfidf(Counter(_tokens(text)))
        lexical = np.array([sum(w * doc.get(t, 0.0) for t, w in query.items()) for doc in self._docs])
        lowered = text.lower()
        keywords = np.array(
            [1.0 - math.prod(1.0 - 0.6 * w for p, w in kws if p.search(lowered)) for kws in self._keywords]
        )
        bar = share * self.threshold + (1.0 - share) * self.threshold_zh
        return share * emb + (1.0 - share) * lexical + self.keyword_weight * keywords, bar

    def match(
        self, request: str, *, k: int = 3, today: dt.date | None = None
    ) -> list[tuple[Playbook, float]]:
        """The k best playbooks with scores, best first; the fallback leads when none reaches the bar."""
        scores, bar = self.scores(request, today=today)
        order = np.argsort(-scores, kind="stable")[:k]
        ranked = [(self.playbooks[i], float(scores[i])) for i in order]
        if not ranked or ranked[0][1] < bar:
            log.info("no playbook reaches %.2f for %r; using %s", bar, request[:80], self.fallback.name)
            ranked = [(self.fallback, bar), *ranked][:k]
        return ranked

    def best(self, request: str, *, today: dt.date | None = None) -> Playbook:
        """The playbook to plan from: the best match, or the fallback."""
        return self.match(request, k=1, today=today)[0][0]


# ---- topic extraction and adaptation ----

_COMMAND = re.compile(
    r"^\s*(?:<[@!#][^>]*>\s*|@\w+\s*)*(?:/?(?:plan|todo|task|request)\s*[:：,]?\s+)?", re.IGNORECASE
)
_EN_LEAD = re.compile(
    r"^(?:(?:please|pls|kindly|hey|hi|ok(?:ay)?|so|can\s+you|could\s+you|would\s+you|will\s+you"
    r"|help\s+(?:me|us)(?:\s+to)?|(?:i|we)\s+(?:need|want|have|would\s+like)(?:\s+(?:you\s+)?to)?|we\s+must"
    r"|make\s+sure(?:\s+that)?|have\s+someone|get\s+someone\s+to"
    r"|need\s+to|have\s+to|let'?s|let\s+us|go\s+ahead\s+and|time\s+to|someone\s+(?:should|needs\s+to)"
    r"|(?:make|create|draw\s+up|write|put\s+together)\s+a\s+plan\s+(?:to|for)"
    r"|plan\s+(?:out\s+)?(?:how\s+to|for|to))"
    r"[\s,]+)+",
    re.IGNORECASE,
)
_EN_VERB = re.compile(
    r"^(?:put\s+together|set\s+up|roll\s+out|kick\s+off|get\s+ready\s+for|carry\s+out|bring\s+out|put\s+up"
    r"|sort\s+out|respond\s+to|work\s+on|take\s+care\s+of|pull\s+together|launch|prepare|organi[sz]e|plan"
    r"|hire|recruit|write|draft|create|build|run|do|make|ship|release|fix|resolve|migrate|move|onboard"
    r"|offboard|translate|locali[sz]e|analy[sz]e|design|redesign|compile|publish|host|hold|arrange|coordinate"
    r"|conduct|start|complete|finish|deliver|produce|update|review|implement|develop|add|answer|select|choose"
    r"|find|evaluate|refresh|redo|send"
    r"|collect|handle|investigate|schedule|train|document|finali[sz]e|assemble|close|get)\s+(?:and\s+)?",
    re.IGNORECASE,
)
_EN_TRAIL = re.compile(
    r"(?:[\s,;:.!?]+|\s+(?:please|asap|thanks|thank\s+you|for\s+(?:me|us)|as\s+soon\s+as\s+possible))+$",
    re.IGNORECASE,
)
_ZH_LEAD = re.compile(
    r"^(?:请你?|麻烦你?|帮我们?|帮忙|我们?(?:需要|要|得|想)|需要|我想|给我|尽快|赶紧|马上|在|把|的|，|,|\s)+"
)
_ZH_VERB = re.compile(
    r"^(?:准备好?|筹备|筹办|组织|制作|做好?|写|撰写|编写|编制|完成|发布|上线|招聘|招到|招|举办|策划|处理|修复|解决|迁移|开发"
    r"|设计|整理|规划|制定|启动|安排|推出|进行|开展|起草|翻译|分析|评估|选择|采购|办理|搞定|落实|实施|执行|更新|创建|搭建"
    r"|建立|负责)"
)
_ZH_ONE = re.compile(r"^(?:的|一下|一(?:名|个|位|份|次|场|套|篇|轮|批|款))")
_CLAUSE = re.compile(r"\s*[,，;；]\s*")
_ZH_TRAIL = re.compile(r"(?:吧|一下|哦|啊|呢|谢谢|好吗|可以吗|[。！!？?，,；;\s])+$")
_TOPIC_MAX = 80


def _is_chinese(text: str) -> bool:
    return _latin_share(text) < 0.5


def extract_topic(request: str, *, today: dt.date | None = None) -> str:
    """The request's object in the user's words: "launch the pricing page by Dec 20" -> "the pricing page".

    Command words, mentions, date phrases, politeness and the leading verb go; "" if nothing is left.
    """
    text = " ".join(request.split())
    text = _COMMAND.sub("", text, count=1)
    text = re.sub(r"\s+([,，.;；!?])", r"\1", strip_dates(text, today or dt.date.today()))
    for lead, verb, trail in ((_EN_LEAD, _EN_VERB, _EN_TRAIL), (_ZH_LEAD, _ZH_VERB, _ZH_TRAIL)):
        text = trail.sub("", lead.sub("", text))
        for _ in range(2):  # "find and hire ...": a second verb only after "and"
            m = verb.match(text)
            if not m or not text[m.end() :].strip():
                break
            text = text[m.end() :]
            if not m.group(0).rstrip().lower().endswith(" and"):
                break
    text = _ZH_ONE.sub("", text).strip(" ,，、:：")
    first = _CLAUSE.split(text, maxsplit=1)[0]  # "John is leaving, handle his exit" -> "John is leaving"
    if len(first.split()) >= 2 or len(_CJK.findall(first)) >= 4:
        text = first
    if len(text) > _TOPIC_MAX:
        cut = text[:_TOPIC_MAX].rsplit(" ", 1)[0] if " " in text[:_TOPIC_MAX] else text[:_TOPIC_MAX]
        text = cut.rstrip(" ,;:") + "…"
    return text


def plan_from_playbook(
    playbook: Playbook, request: str, *, deadline: dt.date | None, topic: str | None = None
) -> DraftPlan:
    """The playbook as a DraftPlan about the request's topic: ids "1", "2", ... in dependency order."""
    topic = (topic or extract_topic(request)).strip() or playbook.title[:1].lower() + playbook.title[1:]
    chinese = _is_chinese(request)
    ordered = _topological(playbook.steps, playbook.name)
    ids = {step.id: str(i) for i, step in enumerate(ordered, start=1)}
    subtasks = tuple(
        Subtask(
            id=ids[step.id],
            title=(step.title_zh if chinese and step.title_zh else step.title).replace("{topic}", topic),
            description=step.description.replace("{topic}", topic),
            skills=step.skills,
            estimate_hours=step.estimate_hours,
            depends_on=tuple(ids[d] for d in step.depends_on),
            kind=step.kind,
        )
        for step in ordered
    )
    return DraftPlan(
        request=request,
        title=topic if chinese else f"{playbook.title}: {topic}",
        subtasks=subtasks,
        source=f"playbook:{playbook.name}",
        deadline=deadline,
    )
