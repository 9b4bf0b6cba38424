"""Wikitext -> plain paragraphs, close to what WikiExtractor gives NVIDIA's BERT recipe.

Kept: the running prose of an article. Dropped: templates, references, tables, lists,
headings, files/images, categories, interlanguage links, and lines too short to be prose
(captions, leftovers). Links keep their visible text.

Two passes: first, on the whole page, the constructs that may span lines (comments, <ref> and
the other tags whose content is not prose, templates, tables, file and category links) are
cut out by a linear scanner, so that nothing is split in the middle by the line rules; then
mwparserfromhell does the inline markup (links, bold/italic, HTML tags, entities).

Unclosed constructs (an editing slip) must not take the rest of the article with them:
- a comment, or a tag whose content is dropped, with no closing tag before the next opening
  tag of the same name (or none at all) ends at the end of its paragraph (the next blank line);
- an unclosed `{{` or `{|` goes from there to the end of its paragraph;
- an unclosed file/category/interlanguage link goes to the end of its line; any other
  unclosed `[[` loses only its brackets.
Markup tokens left over after that (stray `}}`, `]]`, tags) are removed from the lines.
"""

from __future__ import annotations

import re
from bisect import bisect_left

import mwparserfromhell

# Lines that are lists (* # : ;), table rows ({| |- | ! |}) or headings (== x ==): removed before
# parsing, because strip_code() would otherwise keep their text as if it were prose.
_DROP_LINE = re.compile(r"^\s*(?:[*#:;]|\{\||\|\}|\|-|\||!|=.*=\s*$)")
_REDIRECT = re.compile(r"^\s*#redirect", re.IGNORECASE)
_DISAMBIGUATION = re.compile(r"\{\{\s*(?:disambig|dab\b|disambiguation)", re.IGNORECASE)
_LINK_NAMESPACES = {"file", "image", "category", "media", "wikipedia", "wp", "template", "help",
                    "portal", "special", "user", "talk", "wikt", "wiktionary", "s", "commons"}  # fmt: skip
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
# Links into these are never text; links to other wikis and namespaces are when labelled.
_MEDIA_NAMESPACES = {"file", "image", "category", "media"}
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
    text = strip_blocks(text)
    kept = "\n".join(line for line in text.split("\n") if not _DROP_LINE.match(line))
    # Parsed a paragraph at a time: nothing inline spans a blank line once strip_blocks() ran,
    # and it bounds what any slow path of the parser can cost.
    return [line for part in _PARAGRAPH_END.split(kept) for line in _clean_part(part, min_words)]


def _clean_part(kept: str, min_words: int) -> list[str]:
    code = mwparserfromhell.parse(kept)
    for link in code.filter_wikilinks():
        if _hidden_title(str(link.title), labelled=link.text is not None):
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
        line = _LEFTOVER.sub(" ", line)
        line = _QUOTE_MARKS.sub("", _POSSESSIVE_AFTER_ITALIC.sub("'", line))
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", line)).strip()
        if len(line.split()) >= min_words and not line.startswith(("{", "|", "!")):
            paragraphs.append(line)
    return paragraphs


def _remove(code, node) -> None:
    try:
        code.remove(node)
    except ValueError:
        pass  # already gone with an enclosing node


# Tags whose content is not prose (or not wikitext at all: TeX, code, scores): cut out with
# what they hold, before anything else, so that a `}}` inside TeX cannot close a template.
_DROPPED_TAGS = ("ref", "references", "gallery", "math", "chem", "ce", "score", "timeline",
                 "imagemap", "hiero", "graph", "syntaxhighlight", "source", "pre",
                 "templatedata", "mapframe", "maplink", "inputbox", "categorytree")  # fmt: skip
_TAG_NAMES = "|".join((*_DROPPED_TAGS, "nowiki"))
# Attributes are bounded (1000 characters) so that a `<ref` never closed by `>` costs a bounded
# look-ahead, not a scan to the end of the page for each one.
_OPENER = re.compile(
    rf"<!--|<({_TAG_NAMES})(?=[\s/>])[^<>]{{0,1000}}?(/)?\s*>|</({_TAG_NAMES})\s*>"
    rf"|<({_TAG_NAMES})(?=[\s/>])",  # the opening tag itself unclosed: `<ref name=x` and no `>`
    re.I,
)
_CLOSERS = {name: re.compile(rf"</{name}\s*>", re.I) for name in (*_DROPPED_TAGS, "nowiki")}
_REOPENERS = {name: re.compile(rf"<{name}(?=[\s/>])", re.I) for name in (*_DROPPED_TAGS, "nowiki")}
_COMMENT_END = re.compile("-->")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
# nowiki text is prose shown literally: kept, but as entities so that it is not parsed again.
_NOWIKI_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "&<>[]{}|'=*#:;~_-"})
# Markup that is opened and never closed is made text (escaped) before mwparserfromhell sees
# it: its time grows with the square of their number (measured on 0.4 MB: 3,300 `<ref name=x`
# 23 s, 23,000 unclosed `<span>` 177 s, 29,000 unclosed `[http://` links 103 s; now < 1 s).
_STRAY_LT = re.compile(r"<(?!/?[A-Za-z][^<>]{0,1000}>|!--)")
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?=[\s/>])[^<>]{0,1000}?(/?)>")
_VOID_TAGS = {"br", "hr", "wbr", "img", "col", "area", "meta", "link", "input", "source", "track"}
_EXT_LINK = re.compile(r"(?<!\[)\[(?=[A-Za-z][A-Za-z0-9+.-]*://|//|mailto:)|(?<!\])\](?!\])|\n")
_BR = re.compile(r"<\s*/?\s*br\s*/?\s*>", re.I)
_MAGIC_WORD = re.compile(r"__[A-Z]{2,30}__")
# Braces, double brackets and table edges (`{|` `|}` start a line; `:{|` is an indented table).
_TOKEN = re.compile(r"^[ \t:]*(\{\|)|^[ \t]*(\|\})|\{\{+|\}\}+|\[\[+|\]\]+", re.M)
_TEMPLATE, _TABLE, _LINK = "{{", "{|", "[["
# Bold/italic quote runs the parser left (unbalanced, or around a removed template) are never
# visible text; three quotes before "s" after a word are an italic's end and an apostrophe.
_POSSESSIVE_AFTER_ITALIC = re.compile(r"(?<=\w)'''(?=s\b)")
_QUOTE_MARKS = re.compile(r"'{2,}")
_LEFTOVER = re.compile(
    r"\{\{|\}\}|\{\||\|\}|\[\[|\]\]|<!--|-->|</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,500})?/?>"
)


class _Next:
    """The next match of a pattern at or after a position that only grows. A match found
    earlier is still the next one while the position has not passed it, so the text is
    searched once in all, however many constructs ask (what keeps the scan linear)."""

    def __init__(self, pattern: re.Pattern, text: str):
        self.pattern, self.text = pattern, text
        self.start, self.match = -1, None

    def at(self, pos: int) -> re.Match | None:
        if self.start < 0 or pos < self.start or (self.match and self.match.start() < pos):
            self.start, self.match = pos, self.pattern.search(self.text, pos)
        return self.match


def strip_blocks(text: str) -> str:
    """Cut out every construct that may span lines; what is left has only inline markup."""
    text = _strip_tags(text)
    text = _BR.sub(" ", _MAGIC_WORD.sub("", text))
    text = _STRAY_LT.sub("&lt;", text)
    text = _escape_unclosed(text)
    return _strip_brackets(text)


def _strip_tags(text: str) -> str:
    """Comments and the tags of _DROPPED_TAGS (with their content); nowiki keeps its text."""
    out, pos = [], 0
    paragraph = _Next(_PARAGRAPH_END, text)
    comment_end = _Next(_COMMENT_END, text)
    closers = {name: _Next(pattern, text) for name, pattern in _CLOSERS.items()}
    reopeners = {name: _Next(pattern, text) for name, pattern in _REOPENERS.items()}

    def paragraph_end(at: int) -> int:
        found = paragraph.at(at)
        return found.start() if found else len(text)

    while (m := _OPENER.search(text, pos)) is not None:
        out.append(text[pos : m.start()])
        if m.group(0) == "<!--":
            end = comment_end.at(m.end())
            pos = end.end() if end else paragraph_end(m.end())
        elif m.group(3) or m.group(2):  # a stray closing tag, or <ref name="x" />
            pos = m.end()
        elif m.group(4):
            pos = paragraph_end(m.end())
        else:
            name = m.group(1).lower()
            close = closers[name].at(m.end())
            again = reopeners[name].at(m.end())
            if close is None or (again is not None and again.start() < close.start()):
                pos = paragraph_end(m.end())
            else:
                if name == "nowiki":
                    out.append(text[m.end() : close.start()].translate(_NOWIKI_ESCAPES))
                pos = close.end()
    out.append(text[pos:])
    return "".join(out)


def _strip_brackets(text: str) -> str:
    """Templates and tables (nested in any mix), and links to files, categories and other
    wikis, matched with one stack in one pass."""
    cuts: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    open_count = {_TEMPLATE: 0, _TABLE: 0, _LINK: 0}
    paragraph_ends = [m.start() for m in _PARAGRAPH_END.finditer(text)]

    def unclosed(kind: str, start: int) -> None:
        if kind == _LINK:
            if _is_hidden_link(text, start, len(text)):
                end = text.find("\n", start)
                cuts.append((start, len(text) if end < 0 else end))
            else:
                cuts.append((start, start + 2))
            return
        i = bisect_left(paragraph_ends, start)
        cuts.append((start, paragraph_ends[i] if i < len(paragraph_ends) else len(text)))

    def close(kind: str, end: int) -> None:
        if open_count[kind] == 0:
            return  # a stray closer: left to the leftover rule
        while True:
            top, start = stack.pop()
            open_count[top] -= 1
            if top == kind:
                break
            unclosed(top, start)
        if kind == _TEMPLATE and (shown := _shown_argument(text, start, end)) is not None:
            cuts.extend([(start, shown[0]), (shown[1], end)])  # keep what the page shows
        elif kind != _LINK or _is_hidden_link(text, start, end):
            cuts.append((start, end))

    pos = 0
    while (m := _TOKEN.search(text, pos)) is not None:
        pos = m.end()
        if m.group(1):  # {| opens a table
            stack.append((_TABLE, m.start(1)))
            open_count[_TABLE] += 1
        elif m.group(2):  # |} closes a table, unless it is `|}}` ending a template
            if text.startswith("}}", m.start(2) + 1) and stack and stack[-1][0] == _TEMPLATE:
                pos = m.start(2) + 1
            else:
                close(_TABLE, m.end(2))
        else:
            run = m.group(0)
            kind = _LINK if run[0] in "[]" else _TEMPLATE
            pairs = len(run) // 2
            if run[0] in "{[":
                # `{{{` is one opener (a parameter): the odd brace goes with the last pair.
                for k in range(pairs):
                    stack.append((kind, m.start() + 2 * k))
                    open_count[kind] += 1
            else:
                for k in range(pairs):
                    close(kind, m.end() if k == pairs - 1 else m.start() + 2 * k + 2)
    for kind, start in stack:
        unclosed(kind, start)
    if not cuts:
        return text
    cuts.sort()
    out, pos = [], 0
    for start, end in cuts:
        if start > pos:
            out.append(text[pos:start])
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def _is_hidden_link(text: str, start: int, end: int) -> bool:
    """[[File:...]], [[Category:...]], [[de:...]]: not part of the prose. A link to another
    wiki with a label ([[wikt:anarchism|anarchism]]) shows its label: kept."""
    title, bar, _ = text[start + 2 : min(end, start + 80)].partition("|")
    return _hidden_title(title, labelled=bool(bar))


def _hidden_title(title: str, *, labelled: bool) -> bool:
    prefix, colon, _ = title.partition(":")
    prefix = prefix.strip().lower()
    if not colon or not (prefix in _LINK_NAMESPACES or _LANG_PREFIX.match(prefix)):
        return False
    return prefix in _MEDIA_NAMESPACES or not labelled


# Templates that show one of their arguments as running text ({{lang|es|La Voz}} -> La Voz,
# {{lang-ps|...}}, {{nowrap|...}}): name -> which positional argument is kept, not cut.
_TEXT_TEMPLATES = {"lang": 2, "nowrap": 1, "nobr": 1, "transl": 2, "small": 1, "smaller": 1,
                   "big": 1, "nihongo": 1, "ill": 1, "interlanguage link": 1}  # fmt: skip
_TEMPLATE_NAME = re.compile(r"\{\{\s*([^|{}]+?)\s*(?=\||\}\})")


def _shown_argument(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the argument a text template shows (see `_TEXT_TEMPLATES`), or None."""
    m = _TEMPLATE_NAME.match(text, start, end)
    if m is None:
        return None
    name = m.group(1).lower().replace("_", " ")
    which = 1 if name.startswith("lang-") else _TEXT_TEMPLATES.get(name)
    if which is None:
        return None
    # Top-level `|` of the template: not inside a nested link or template.
    bars, depth, i = [], 0, m.end()
    while i < end - 2:
        two = text[i : i + 2]
        if two in ("[[", "{{"):
            depth, i = depth + 1, i + 2
        elif two in ("]]", "}}"):
            depth, i = depth - 1, i + 2
        else:
            if text[i] == "|" and depth == 0:
                bars.append(i)
            i += 1
    bounds = [*bars, end - 2]
    positional = [
        (a + 1, b) for a, b in zip(bounds, bounds[1:], strict=False)
        if "=" not in text[a + 1 : b].split("[[")[0]
    ]  # fmt: skip
    return positional[which - 1] if len(positional) >= which else None


def _escape_unclosed(text: str) -> str:
    """Escape HTML tags never closed and `[http...` links with no `]` on their line."""
    escape: list[int] = []
    open_tags: dict[str, list[int]] = {}
    for m in _HTML_TAG.finditer(text):
        name = m.group(2).lower()
        if m.group(3) or name in _VOID_TAGS:
            continue
        if not m.group(1):
            open_tags.setdefault(name, []).append(m.start())
        elif open_tags.get(name):
            open_tags[name].pop()
    for starts in open_tags.values():
        escape.extend(starts)
    closers = 0
    for m in reversed(list(_EXT_LINK.finditer(text))):
        char = m.group(0)
        if char == "\n":
            closers = 0
        elif char == "]":
            closers += 1
        elif closers:
            closers -= 1
        else:
            escape.append(m.start())
    if not escape:
        return text
    out, pos = [], 0
    for at in sorted(escape):
        out.append(text[pos:at])
        out.append("&lt;" if text[at] == "<" else "&#91;")
        pos = at + 1
    out.append(text[pos:])
    return "".join(out)
