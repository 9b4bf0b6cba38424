"""`nvlm data wikipedia` on a small hand-written dump (bz2-compressed here, never on the net)."""

from __future__ import annotations

import bz2
import json

import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.wikipedia.markup import clean_article

runner = CliRunner()

ARTICLE = """{{Infobox town
| name = Brimholm
| population = 4,200
}}
'''Brimholm''' is a small town on the [[Vesk River|Vesk]] in the north of [[Lorland]].<ref>{{cite web|url=http://x.example}}</ref> It was founded by weavers in 1312. Its market opens every Tuesday.

== History ==
The town grew around a wooden bridge that crossed the river near the old mill. Dr. Aldo Pim rebuilt the bridge in stone in 1580.

* A list item that should not be kept in the text
* Another list item that should not be kept
{| class="wikitable"
| table cell text that must go || more cells here
|}
[[File:Brimholm bridge.jpg|thumb|The stone bridge over the river at dawn]]
Short line.

[[Category:Towns in Lorland]]
[[de:Brimholm]]
"""

OTHER = "'''Vesk''' is a river that flows through [[Lorland]] and into the sea. It is known for its clear water and its many fish."


def _page(title: str, text: str, ns: int = 0, redirect: str | None = None) -> str:
    red = f'<redirect title="{redirect}" />' if redirect else ""
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<page><title>{title}</title><ns>{ns}</ns><id>1</id>{red}<revision><id>2</id><text xml:space="preserve">{body}</text></revision></page>'


@pytest.fixture
def dump(tmp_path):
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="en">'
        "<siteinfo><sitename>Wikipedia</sitename></siteinfo>"
        + _page("Brimholm", ARTICLE)
        + _page("Brimholm town", "#REDIRECT [[Brimholm]]", redirect="Brimholm")
        + _page(
            "Talk:Brimholm", "Some discussion that is long enough to count as prose here.", ns=1
        )
        + _page(
            "Brim (disambiguation)", "'''Brim''' may refer to many places and people in stories."
        )
        + _page("Vesk", OTHER)
        + "</mediawiki>"
    )
    path = tmp_path / "enwiki-test-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode()))
    return path


def test_clean_article_keeps_prose_and_drops_markup():
    paragraphs = clean_article(ARTICLE)
    text = "\n".join(paragraphs)
    assert paragraphs[0].startswith("Brimholm is a small town on the Vesk in the north of Lorland.")
    assert "wooden bridge" in text
    for gone in ("Infobox", "population", "cite web", "History", "list item", "table cell", "thumb",
                 "stone bridge over the river at dawn", "Category", "de:", "Short line"):  # fmt: skip
        assert gone not in text, gone


def test_wikipedia_command_writes_documents_in_shards(dump, tmp_path):
    out = tmp_path / "text"
    result = runner.invoke(
        app,
        [
            "data",
            "wikipedia",
            str(dump),
            "--out",
            str(out),
            "--shards",
            "2",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["pages"], summary["redirects"], summary["skipped_namespace"]) == (5, 1, 1)
    assert summary["documents"] == 2 and summary["empty"] == 1  # the disambiguation page
    first = (out / "wiki-00000.txt").read_text()
    second = (out / "wiki-00001.txt").read_text()
    lines = first.rstrip("\n").split("\n")
    # One sentence per line, "Dr." does not end a sentence, a blank line ends the document.
    assert lines[0] == "Brimholm is a small town on the Vesk in the north of Lorland."
    assert lines[1] == "It was founded by weavers in 1312."
    assert "Dr. Aldo Pim rebuilt the bridge in stone in 1580." in lines
    assert first.endswith("\n\n") and second.startswith("Vesk is a river")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "wikipedia-text" and manifest["files"] == [
        "wiki-00000.txt",
        "wiki-00001.txt",
    ]


def test_wikipedia_output_does_not_depend_on_workers(dump, tmp_path):
    for workers in ("1", "2"):
        result = runner.invoke(
            app,
            [
                "data",
                "wikipedia",
                str(dump),
                "--out",
                str(tmp_path / workers),
                "--shards",
                "1",
                "--workers",
                workers,
            ],
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "1" / "wiki-00000.txt").read_bytes() == (
        tmp_path / "2" / "wiki-00000.txt"
    ).read_bytes()


def test_wikipedia_bad_dump_is_a_user_error(tmp_path):
    bad = tmp_path / "dump.xml.bz2"
    bad.write_bytes(b"plain text, not bz2")
    result = runner.invoke(
        app, ["data", "wikipedia", str(bad), "--out", str(tmp_path / "o"), "--workers", "1"]
    )
    assert result.exit_code == 2 and "is not a readable bz2 file" in result.stderr
    assert not list((tmp_path / "o").glob("*"))
    result = runner.invoke(
        app, ["data", "wikipedia", str(tmp_path / "none.bz2"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "dump not found" in result.stderr
