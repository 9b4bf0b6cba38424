"""Inline wikitext that shows text keeps it, and quote marks never leak
(nvlm/data/wikipedia/markup.py). On gensim's 206-page English Wikipedia fragment these were the
leftovers: 23 lines with stray '' quote marks, the label of [[wikt:...|label]] links and the
text of {{lang|...}} templates missing. Every page here is written by us."""

from __future__ import annotations

from nvlm.data.wikipedia.markup import clean_article


def test_a_language_template_shows_its_text():
    page = (
        "In the port the weekly paper ''{{lang|es|[[La Voz del Puerto]]}}'' (English: The "
        "Voice of the Port) was printed nine times.\n\n"
        "The valley is called {{lang-de|Tiefental}} by the people who live there.\n\n"
        "Its river is the {{lang|fr|Serre|italic=no}} and it floods every spring."
    )
    assert clean_article(page) == [
        "In the port the weekly paper La Voz del Puerto (English: The Voice of the Port) was "
        "printed nine times.",
        "The valley is called Tiefental by the people who live there.",
        "Its river is the Serre and it floods every spring.",
    ]


def test_a_labelled_link_to_another_wiki_shows_its_label():
    page = (
        "The term ''[[wikt:orchard|orchard]]'' is an old word for a garden of fruit trees.\n"
        "[[Category:Gardens|Orchard]]\n[[File:Orchard.jpg|thumb|An orchard in bloom]]\n"
        "[[de:Obstgarten]]"
    )
    assert clean_article(page) == ["The term orchard is an old word for a garden of fruit trees."]


def test_quote_marks_left_around_removed_markup_never_show():
    page = (
        "Scholars hold that ''[[The Long Road]]'''s last chapter was written first.\n\n"
        "The suffix ''{{IPA|-ton}}'' means a farm or a village in the old tongue.\n\n"
        "The guild printed '''''unbalanced bold italics and went on with its work."
    )
    lines = clean_article(page)
    assert lines == [
        "Scholars hold that The Long Road's last chapter was written first.",
        "The suffix means a farm or a village in the old tongue.",
        "The guild printed unbalanced bold italics and went on with its work.",
    ]
    assert not any("''" in line for line in lines)
