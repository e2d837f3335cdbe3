"""Language of a short text (caption, OCR string), and text normalisation for keyword matching.

:func:`detect_language` names the language of a caption or an on-screen string with
``py3langid`` (BSD-3, numpy only, its model ships in the wheel), restricted to
:data:`LANGUAGES` (short texts confuse close languages otherwise: "receta fácil" came out
as Extremaduran). Hashtags are left out of the decision because uploaders write them in
English whatever the caption's language ("周末练舞 #dancechallenge" is Chinese). Transcripts
carry Whisper's own language and do not come here.

:func:`normalize` and :func:`keyword_pattern` make keyword matching work across scripts:
text is NFKC-normalised and case-folded, and a keyword in a script written with spaces
must stand as a whole word (Unicode word characters on neither side), while a keyword
in Chinese or Japanese, which are written without spaces, matches as a substring.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tagging.runtime import cached_model, require

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "zh", "ja", "ko", "fr", "es", "pt", "de", "it", "nl", "ru", "ar", "tr", "th", "pl", "vi", "id", "hi")
"""Languages :func:`detect_language` chooses from (ISO 639-1)."""

_HASHTAG = re.compile(r"#\S+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")


@dataclass(frozen=True)
class Language:
    """A detected language: ISO 639-1 ``code`` and the detector's normalised ``probability``."""

    code: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"code": self.code, "probability": round(self.probability, 3)}


def _identifier() -> Any:
    def load() -> Any:
        require("py3langid", "py3langid")
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        ident.set_languages(list(LANGUAGES))
        return ident

    return cached_model(("py3langid", LANGUAGES), load)


def detect_language(text: str) -> Language | None:
    """The language of ``text``, or None when it has no letters to go by.

    Han characters decide Chinese (Japanese with kana, Korean with Hangul) without the
    model; other text goes to ``py3langid``.

    Raises:
        MissingDependency: py3langid is not installed (and the text is not CJK).
    """
    body = _HASHTAG.sub(" ", text or "").strip()
    if not any(ch.isalpha() for ch in body):
        body = (text or "").replace("#", " ").strip()  # hashtags only: they are the text
        if not any(ch.isalpha() for ch in body):
            return None
    if _KANA.search(body):
        return Language("ja", 1.0)
    if _HANGUL.search(body):
        return Language("ko", 1.0)
    letters = sum(ch.isalpha() for ch in body)
    if len(_CJK.findall(body)) >= 0.3 * letters:
        return Language("zh", 1.0)
    code, prob = _identifier().classify(body)
    return Language(str(code), float(prob))


def normalize(text: str) -> str:
    """NFKC-normalised, case-folded text (full-width letters and ligatures folded too)."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A pattern that finds ``keyword`` in :func:`normalize`-d text.

    Words in scripts written with spaces must stand alone ("art" does not match "party",
    "danse" does not match "dansez", "#dance" matches "dance"); Chinese and Japanese
    keywords match anywhere ("狗" in "我的狗狗").
    """
    kw = normalize(keyword).strip()
    if _CJK.search(kw):
        return re.compile(re.escape(kw))
    return re.compile(rf"(?<!\w){re.escape(kw)}(?!\w)")


def source_languages(texts: dict[str, str], known: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """The language of each text source: ``known`` where given (Whisper's for a transcript), else detected."""
    known = known or {}
    out: dict[str, str | None] = {}
    for source, text in texts.items():
        lang = known.get(source)
        if not lang:
            detected = detect_language(text)
            lang = detected.code if detected is not None else None
        out[source] = lang
    return out
