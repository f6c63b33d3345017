"""Prompt -> class index for the image model: digit words (English and Chinese), names, then embeddings.

"a handwritten seven", "sevens", "7", "七" and "柒" all find the class "7" without a model; prompts for
other class sets ("a small cat" for a "cat" class) are matched by MiniLM sentence similarity to the class
names. A prompt that matches nothing well raises UnknownLabel listing what the model can draw.
"""

from __future__ import annotations

import logging
import re
from typing import Sequence

from planner.embed import Embedder

log = logging.getLogger(__name__)

try:  # the GAN package owns the error type (generation/gan per the interface contract)
    from generation.gan.errors import UnknownLabel
except ImportError:  # pragma: no cover - only while generation/gan is not in the checkout

    class UnknownLabel(ValueError):  # type: ignore[no-redef]
        """A label the model cannot draw; `.classes` lists what it can."""

        def __init__(self, label: object, classes: list[str]) -> None:
            self.label = label
            self.classes = list(classes)
            super().__init__(f"unknown label {label!r}; this model can draw: {', '.join(self.classes)}")


EN_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
EN_NUMBERS = {w: i for i, w in enumerate(EN_DIGITS)} | {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "a": 1, "an": 1, "a couple of": 2, "a few": 3, "dozen": 12, "a dozen": 12,
}  # fmt: skip
_EN_PLURALS = {"zeros": 0, "zeroes": 0, "ones": 1, "twos": 2, "threes": 3, "fours": 4, "fives": 5,
               "sixes": 6, "sevens": 7, "eights": 8, "nines": 9, "oh": 0, "nought": 0}  # fmt: skip
ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9, "壹": 1, "贰": 2, "貳": 2, "叁": 3, "參": 3, "肆": 4, "伍": 5, "陆": 6,
             "陸": 6, "柒": 7, "捌": 8, "玖": 9}  # fmt: skip
# Sentence similarity a prompt needs to a class name (MiniLM cosine); below it the prompt is unknown.
MIN_SIMILARITY = 0.45

_WORD = re.compile(r"[a-z]+|\d+|[\u4e00-\u9fff]")
_FILLER = {"a", "an", "the", "of", "handwritten", "hand", "written", "digit", "digits", "number", "numbers",
           "image", "images", "picture", "pictures", "photo", "photos", "drawing", "drawings", "some", "me",
           "please", "draw", "sketch", "paint", "generate", "make", "create", "show", "little", "small",
           "big", "nice", "cute", "few", "couple", "sample", "samples", "handwriting", "style"}  # fmt: skip
_ZH_FILLER = set("画个张只幅些一下给我写的数字手图片生成请")


def digit_of(word: str) -> int | None:
    """The digit a single word names: "7", "seven", "sevens", "七", "柒"; else None."""
    w = word.strip().lower()
    if w.isdigit() and len(w) == 1:
        return int(w)
    if w in EN_DIGITS:
        return EN_DIGITS.index(w)
    if w in _EN_PLURALS:
        return _EN_PLURALS[w]
    if len(w) == 1 and w in ZH_DIGITS:
        return ZH_DIGITS[w]
    return None


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "ch", "sh")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


class LabelResolver:
    """Finds the class a prompt asks for among class_names (see the module docstring)."""

    def __init__(
        self, class_names: Sequence[str], embedder: Embedder | None = None, *, min_similarity: float = MIN_SIMILARITY
    ) -> None:
        if not class_names:
            raise ValueError("the image model has no class names")
        self.class_names = [str(c) for c in class_names]
        self.embedder = embedder
        self.min_similarity = min_similarity
        self._by_name = {c.strip().lower(): i for i, c in enumerate(self.class_names)}
        self._class_vectors = None

    def unknown(self, prompt: str, why: str = "") -> UnknownLabel:
        can = ", ".join(self.class_names)
        err = UnknownLabel(prompt, self.class_names)
        err.args = (f"I can't draw {prompt.strip()[:80]!r}{why}. This model can draw: {can}.",)
        return err

    def resolve(self, prompt: str) -> int:
        """The class index for a prompt; raises UnknownLabel (its message lists the classes)."""
        text = " ".join(str(prompt).split())
        if not text:
            raise self.unknown(text, " (the prompt is empty)")
        low = text.lower()
        if low in self._by_name:
            return self._by_name[low]
        whole = digit_of(low)  # "一", "seven" alone
        if whole is not None and str(whole) in self._by_name:
            return self._by_name[str(whole)]
        words = _WORD.findall(low)
        content = [w for w in words if w not in _FILLER and w not in _ZH_FILLER]
        for w in content:  # a class named by a word of the prompt ("a cat", "cats")
            for form in (w, _singular(w)):
                if form in self._by_name:
                    return self._by_name[form]
        digits = {d for w in content if (d := digit_of(w)) is not None}
        if len(digits) == 1:
            (d,) = digits
            if str(d) in self._by_name:
                return self._by_name[str(d)]
            if EN_DIGITS[d] in self._by_name:
                return self._by_name[EN_DIGITS[d]]
        elif len(digits) > 1:
            raise self.unknown(text, " (it names more than one digit; ask for one at a time)")
        return self._by_similarity(text)

    def _names_as_text(self) -> list[str]:
        """Class names as the embedder reads them best: digits spelled out."""
        out = []
        for c in self.class_names:
            d = digit_of(c)
            out.append(f"the digit {EN_DIGITS[d]}" if d is not None and c.strip().isdigit() else c)
        return out

    def _by_similarity(self, text: str) -> int:
        if self.embedder is None:
            raise self.unknown(text)
        import numpy as np

        if self._class_vectors is None:
            self._class_vectors = self.embedder.encode(self._names_as_text())
        q = self.embedder.encode([text])[0]
        sims = np.asarray(self._class_vectors) @ q
        best = int(sims.argmax())
        log.info("label %r -> %r by similarity %.2f", text[:60], self.class_names[best], float(sims[best]))
        if float(sims[best]) < self.min_similarity:
            raise self.unknown(text)
        return best


_EN_COUNT = re.compile(
    r"^(?:please\s+)?(?:draw|sketch|paint|generate|make|create|show(?:\s+me)?|give\s+me)\s+(?:me\s+)?"
    r"(?P<count>\d+|a\s+dozen|a\s+couple\s+of|a\s+few|[a-z]+)\s+(?P<rest>.+)$",
    re.I,
)
_EN_VERB = re.compile(r"^(?:please\s+)?(?:draw|sketch|paint|generate|make|create|show(?:\s+me)?|give\s+me)\s+", re.I)
_ZH_VERB = re.compile(r"^(?:请)?(?:给我)?(?:画|生成|来)(?:一下)?")
_ZH_COUNT = re.compile(r"^(?P<count>\d+|[零〇一二两三四五六七八九十百]+)\s*(?:个|张|只|幅|副|条|头)(?P<rest>.+)$")
_OF = re.compile(r"^(?:images?|pictures?|photos?|drawings?|samples?|examples?)\s+of\s+", re.I)


def _zh_number(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    if s == "十":
        return 10
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = ZH_DIGITS.get(tens, 1) if tens else 1
        o = ZH_DIGITS.get(ones, 0) if ones else 0
        return t * 10 + o
    if len(s) == 1 and s in ZH_DIGITS:
        return ZH_DIGITS[s]
    return None


def parse_draw_request(text: str) -> tuple[int | None, str]:
    """(count, subject) of a drawing request: "draw 8 sevens" -> (8, "sevens"); "画三个七" -> (3, "七").

    The count is None when none is given ("draw a seven" -> (None, "seven")); the subject keeps its words.
    """
    t = " ".join(str(text).split())
    zh = _ZH_VERB.sub("", t)
    if zh != t or _ZH_COUNT.match(t):
        m = _ZH_COUNT.match(zh.strip())
        if m and (n := _zh_number(m.group("count"))) is not None:
            return n, m.group("rest").strip()
        return None, zh.strip()
    m = _EN_COUNT.match(t)
    if m:
        word, rest = m.group("count").lower(), m.group("rest").strip()
        n = int(word) if word.isdigit() else EN_NUMBERS.get(" ".join(word.split()))
        if n is not None and rest:
            rest = _OF.sub("", rest)
            return (None if word in ("a", "an") else n), rest
    subject = _OF.sub("", _EN_VERB.sub("", t)).strip()
    return None, subject
