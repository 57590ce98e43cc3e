"""Texts of server-rendered pages in Indonesian first, English available: one catalogue
of messages per service, the translator over it and the choice of language.

`Catalogue(messages).translator(lang)` gives `t(key, **values)`; a key missing in English
falls back to Indonesian, and an unknown key to a readable form of itself (so a new
event action or category shows as words, not as a blank).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"


def humanise(key: str) -> str:
    """The readable form of an unknown key: its last part, underscores as spaces."""
    tail = key.rsplit(".", 1)[-1]
    return tail.replace("_", " ").strip().capitalize() if tail else key


@dataclass(frozen=True)
class Catalogue:
    messages: Mapping[str, Mapping[str, str]]

    def translator(self, lang: str) -> Callable[..., str]:
        primary = self.messages.get(lang, self.messages[DEFAULT_LANGUAGE])
        fallback = self.messages[DEFAULT_LANGUAGE]

        def t(key: str, **values: object) -> str:
            message = primary.get(key) or fallback.get(key)
            if message is None:
                return humanise(key)
            return message.format(**values) if values else message

        return t


def choose_language(requested: str | None, accept_language: str | None) -> str:
    """An explicit choice wins, then the browser's Accept-Language; Indonesian by default."""
    if requested and requested.lower()[:2] in LANGUAGES:
        return requested.lower()[:2]
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = tag.strip().lower()[:2]
        if lang in LANGUAGES and quality > 0 and (best is None or quality > best[0]):
            best = (quality, lang)
    return best[1] if best else DEFAULT_LANGUAGE
