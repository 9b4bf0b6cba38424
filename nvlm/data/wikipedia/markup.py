"""Wikitext -> plain paragraphs, close to what WikiExtractor gives NVIDIA's BERT recipe.

Kept: the running prose of an article. Dropped: templates, references, tables, lists,
headings, files/images, categories, interlanguage links, and lines too short to be prose
(captions, leftovers). Links keep their visible text. mwparserfromhell does the parsing.
"""

from __future__ import annotations

import re

import mwparserfromhell

# Lines that are lists (* # : ;), table rows ({| |- | ! |}) or headings (== x ==): removed before
# parsing, because strip_code() would otherwise keep their text as if it were prose.
_DROP_LINE = re.compile(r"^\s*(?:[*#:;]|\{\||\|\}|\|-|\||!|=.*=\s*$)")
_REDIRECT = re.compile(r"^\s*#redirect", re.IGNORECASE)
_DISAMBIGUATION = re.compile(r"\{\{\s*(?:disambig|dab\b|disambiguation)", re.IGNORECASE)
_LINK_NAMESPACES = {"file", "image", "category", "media", "wikipedia", "wp", "template", "help",
                    "portal", "special", "user", "talk", "wikt", "wiktionary", "s", "commons"}  # fmt: skip
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
_INVISIBLE_TAGS = {"ref", "references", "gallery", "math", "table", "timeline", "imagemap",
                   "score", "syntaxhighlight", "source", "pre", "chem", "hiero", "graph"}  # fmt: skip
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"[ \t\u00a0]+")
MIN_WORDS = 5


def is_skipped(title: str, text: str) -> bool:
    """Redirects and disambiguation pages carry no prose."""
    return (
        bool(_REDIRECT.match(text))
        or "(disambiguation)" in title
        or bool(_DISAMBIGUATION.search(text))
    )


def clean_article(text: str, min_words: int = MIN_WORDS) -> list[str]:
    """Plain-text paragraphs of one article's wikitext (possibly none)."""
    kept = "\n".join(line for line in text.split("\n") if not _DROP_LINE.match(line))
    code = mwparserfromhell.parse(kept)
    for link in code.filter_wikilinks():
        prefix, colon, _ = str(link.title).partition(":")
        prefix = prefix.strip().lower()
        if colon and (prefix in _LINK_NAMESPACES or _LANG_PREFIX.match(prefix)):
            _remove(code, link)
    for tag in code.filter_tags():
        if str(tag.tag).strip().lower() in _INVISIBLE_TAGS:
            _remove(code, tag)
    for heading in code.filter_headings():
        _remove(code, heading)
    plain = code.strip_code(normalize=True, collapse=True)
    paragraphs = []
    for line in plain.split("\n"):
        line = _EMPTY_BRACKETS.sub("", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", line)).strip()
        if len(line.split()) >= min_words and not line.startswith(("{", "|", "!")):
            paragraphs.append(line)
    return paragraphs


def _remove(code, node) -> None:
    try:
        code.remove(node)
    except ValueError:
        pass  # already gone with an enclosing node
