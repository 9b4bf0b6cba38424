"""Sentence splitting for raw text (`--split-sentences`): pysbd, rule based, no model download."""

from __future__ import annotations

import functools

from nvlm.errors import UserError


def supported_languages() -> tuple[str, ...]:
    from pysbd.languages import LANGUAGE_CODES

    return tuple(sorted(LANGUAGE_CODES))


@functools.lru_cache(maxsize=8)
def _segmenter(lang: str):
    import pysbd

    if lang not in supported_languages():
        raise UserError(
            f"no sentence splitter for language {lang!r}",
            hint=f"use one of {', '.join(supported_languages())}",
        )
    # clean=False: keep the text as written; cleaning rewrites characters we want to keep.
    return pysbd.Segmenter(language=lang, clean=False)


def split_sentences(paragraph: str, lang: str = "en") -> list[str]:
    """Split one paragraph into stripped, non-empty sentences."""
    return [s.strip() for s in _segmenter(lang).segment(paragraph) if s.strip()]


def split_document(lines: list[str], lang: str = "en") -> list[str]:
    """Split each line (a paragraph) of a document; the result has one sentence per item."""
    out: list[str] = []
    for line in lines:
        out.extend(split_sentences(line, lang))
    return out
