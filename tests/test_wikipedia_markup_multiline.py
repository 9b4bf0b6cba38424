"""Wikitext constructs that span lines are removed whole (nvlm/data/wikipedia/markup.py).

Every page here is written by us for these tests, in the shapes real articles use.
"""

from __future__ import annotations

import pytest

from nvlm.data.wikipedia.markup import clean_article

MULTILINE_REF = """'''Orlen''' is a hill town above the [[Tarn Valley|valley of the Tarn]].<ref name="walks">Walking guides:
* {{cite book |title=Hills of the Tarn |year=1998 |publisher=[[Harl Press]]}}
* {{cite web
 |url=http://example.org/orlen
 |title=Orlen walks}}
</ref> Its houses are built from the grey stone of the hill itself.<ref name="walks" /> A road climbs to it in nine bends.<ref group="n">The bends are numbered.
The fourth is the steepest.</ref>

The town hall faces a square that holds a market on Saturdays.<ref>{{cite news|title=Market day|date=2001}}</ref>
"""

INFOBOX = """{{Infobox settlement
| name = Pellow
| image = {{Photo montage
  | photo1 = Pellow harbour.jpg
  | photo2 = Pellow chapel.jpg
}}
| population = {{formatnum:2310}}<ref>Census of the county.</ref>
| coordinates = {{coord|10|N|20|E|display=inline,title}}
}}
{{Use dmy dates|date=May 2020}}
'''Pellow''' is a fishing village on the east coast, known for its {{lang|xx|tarrow}} boats.
"""

COMMENT_TABLE_GALLERY = """<!-- Editors: please discuss
{{before}} changing
the lead -->The chapel of Pellow was built in 1402 and rebuilt after a storm.
{| class="wikitable"
|+ Keepers of the chapel
! Name !! Years
|-
| Ada Wren || 1402-1430
|-
| {| class="inner"
  | nested cell with plenty of words in it
  |}
|}
<gallery mode="packed">
Pellow chapel.jpg|The chapel seen from the harbour, with [[boat]]s
Pellow bell.jpg|Its bell
</gallery>
[[File:Pellow map.png|thumb|upright=1.2|Map of the coast near [[Pellow]], drawn by [[Ada Wren|A. Wren]] in 1420]]
The bell was cast in the village and rings &ndash; so they say &ndash; before each storm.
__NOTOC__
[[Category:Villages on the east coast]]
[[Category:Chapels|Pellow]]
[[xx:Pellow]]
"""

MATH_CODE = """The area of a circle of radius r is <math>\\pi r^{2}</math>, and its edge is <math>2 \\pi r</math> long.
Programs print it with a line such as
<syntaxhighlight lang="python">
print({"area": 3.14 * r ** 2})
</syntaxhighlight>
<pre>
{{not a template}} [[not a link]]
</pre>
<score>\\relative c' { c4 d e f }</score>
The word <nowiki>[[circle]]</nowiki> in brackets is written as <small>plain text</small> on this page.<br />A <span style="color:red">red line</span> is drawn around the edge of the shape.
"""

UNCLOSED = """The first paragraph is complete and must be kept as written here.

A second paragraph starts well.<ref>A note that is never closed
and runs on here.

The third paragraph is untouched by the note above it, and stays.

{{Infobox broken
| name = never closed

The fourth paragraph stays too, after the broken template.
"""

PAGES = [MULTILINE_REF, INFOBOX, COMMENT_TABLE_GALLERY, MATH_CODE, UNCLOSED]
MARKUP = ("<ref", "</ref", "{{", "}}", "{|", "|}", "<!--", "-->", "[[", "]]", "<gallery")


def test_multiline_references_are_removed_and_the_prose_around_them_joined():
    assert clean_article(MULTILINE_REF) == [
        "Orlen is a hill town above the valley of the Tarn. Its houses are built from the grey"
        " stone of the hill itself. A road climbs to it in nine bends.",
        "The town hall faces a square that holds a market on Saturdays.",
    ]


def test_nested_infobox_and_templates_are_removed():
    assert clean_article(INFOBOX) == [
        # {{lang|xx|tarrow}} shows "tarrow" on the page: kept (tests/test_wikipedia_inline_text.py).
        "Pellow is a fishing village on the east coast, known for its tarrow boats."
    ]


def test_comments_nested_tables_galleries_files_and_categories_are_removed():
    assert clean_article(COMMENT_TABLE_GALLERY) == [
        "The chapel of Pellow was built in 1402 and rebuilt after a storm.",
        "The bell was cast in the village and rings \u2013 so they say \u2013 before each storm.",
    ]


def test_math_code_and_scores_are_removed_and_inline_html_keeps_its_text():
    assert clean_article(MATH_CODE) == [
        "The area of a circle of radius r is, and its edge is long.",
        "Programs print it with a line such as",
        "The word circle in brackets is written as plain text on this page. A red line is drawn"
        " around the edge of the shape.",
    ]


def test_an_unclosed_reference_or_template_ends_at_the_end_of_its_paragraph():
    assert clean_article(UNCLOSED) == [
        "The first paragraph is complete and must be kept as written here.",
        "A second paragraph starts well.",
        "The third paragraph is untouched by the note above it, and stays.",
        "The fourth paragraph stays too, after the broken template.",
    ]


@pytest.mark.parametrize("page", PAGES, ids=["ref", "infobox", "blocks", "math", "unclosed"])
def test_no_markup_survives_on_any_line(page):
    for line in clean_article(page, min_words=1):
        for token in MARKUP:
            assert token not in line, (token, line)


def test_a_megabyte_of_deep_nesting_and_an_unclosed_template_keeps_the_text_around_it():
    # One linear pass: this page took ~3 s here (quadratic parsing took minutes). Speed is
    # not asserted (tests time nothing); a quadratic regression shows as a hung test.
    before = "This sentence comes before the broken markup and is kept.\n\n"
    tail = "\n\nThe last paragraph is after a blank line and is kept as well."
    page = before + "{{a|[[b|<span>c " * 60_000 + "}}]]" * 15_000 + tail
    assert len(page) > 1_000_000
    paragraphs = clean_article(page)
    assert paragraphs == [before.strip(), tail.strip()]
