"""Stream pages out of a MediaWiki XML dump (.xml.bz2), in bounded memory.

The dump is decompressed on the fly (never to disk) and parsed with `iterparse`; each <page>
is handed out and then cleared from the tree, so memory holds one page at a time however large
the dump is.
"""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from nvlm.errors import UserError


class Page(NamedTuple):
    title: str
    namespace: int
    redirect: bool
    text: str


def _local(tag: str) -> str:
    # Tags carry the export namespace ({http://www.mediawiki.org/xml/export-0.11/}page); its
    # version changes between dumps, so match on the local name.
    return tag.rsplit("}", 1)[-1]


def iter_pages(path: Path) -> Iterator[Page]:
    if not path.is_file():
        raise UserError(f"dump not found: {path}")
    try:
        with bz2.open(path, "rb") as stream:
            root = None
            for event, elem in ET.iterparse(stream, events=("start", "end")):
                if root is None:
                    root = elem
                    continue
                if event != "end" or _local(elem.tag) != "page":
                    continue
                yield _page(elem)
                # Drop the finished page (and anything before it) from the tree.
                root.clear()
    except OSError as exc:
        raise UserError(f"{path} is not a readable bz2 file ({exc})") from None
    except ET.ParseError as exc:
        raise UserError(f"{path}: broken XML ({exc})") from None


def _page(elem: ET.Element) -> Page:
    title, namespace, redirect, text = "", 0, False, ""
    for child in elem:
        name = _local(child.tag)
        if name == "title":
            title = child.text or ""
        elif name == "ns":
            namespace = int(child.text or 0)
        elif name == "redirect":
            redirect = True
        elif name == "revision":
            for part in child:
                if _local(part.tag) == "text":
                    text = part.text or ""
    return Page(title, namespace, redirect, text)
