"""HTML rendering of answers and sources: markers link to cards, and document text is never markup."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from rag import render
from rag.types import Answer, Citation, Passage, Sentence

ALLOWED_TAGS = {"a", "article", "blockquote", "br", "div", "li", "mark", "p", "section", "span", "ul"}
PASSAGE_TEXT = ("Not a particularly bad idea on the face of it. In Chinese Economic Development, "
                "Chris Bramall argues the diversion of labour led to a collapse.")
QUOTE = "In Chinese Economic Development, Chris Bramall argues the diversion of labour led to a collapse."


class Markup(HTMLParser):
    """Collects the tags, attributes and text of an HTML fragment."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "br":
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [str(a[name]) for t, a in self.tags if t == tag and name in a]

    @property
    def plain(self) -> str:
        return "".join(self.text)


def passage(marker: int = 1, text: str = PASSAGE_TEXT, **fields: object) -> Passage:
    values: dict[str, object] = {"id": f"c{marker}", "source": "seed.txt", "title": "Seed thread",
                                 "score": 0.5, "start": 0, "end": len(text)}
    values.update(fields)
    return Passage(marker=marker, text=text, **values)  # type: ignore[arg-type]


def answer_citing(*citations: Citation, text: str | None = None,
                  sentences: tuple[Sentence, ...] | None = None) -> Answer:
    if text is None:
        text = " ".join(f"{c.quote} [{c.marker}]" for c in citations)
    if sentences is None:
        sentences = tuple(Sentence(f"{c.quote} [{c.marker}]", (c.marker,), c.supported) for c in citations)
    return Answer(question="Which book?", text=text, citations=citations, sentences=sentences)


def assert_inert(fragment: str) -> Markup:
    """No tag outside the renderer's own set, no event handler, no link leaving the page but http(s)."""
    markup = Markup(fragment)
    for tag, attrs in markup.tags:
        assert tag in ALLOWED_TAGS, tag
        assert not any(name.startswith("on") for name in attrs), attrs
        assert "style" not in attrs and "src" not in attrs
    for href in markup.attrs("a", "href"):
        assert href.startswith(("#fn-src-", "#fn-close-", "http://", "https://")), href
    return markup


def test_markers_link_to_the_cards_of_their_passages() -> None:
    first = Citation(1, passage(1), QUOTE, True, 0.9)
    second = Citation(2, passage(2, text="Mao had his base among the peasantry."),
                      "Mao had his base among the peasantry.", True, 0.8)
    answer = answer_citing(first, second)

    links = Markup(render.render_answer(answer, 3)).attrs("a", "href")
    ids = Markup(render.render_sources([None, None, None, answer])).attrs("article", "id")

    assert links == ["#fn-src-3-1", "#fn-src-3-2"]
    assert ids == ["fn-src-3-1", "fn-src-3-2"]


def test_a_marker_without_a_citation_is_not_a_link() -> None:
    answer = answer_citing(Citation(1, passage(1), QUOTE, True, 0.9),
                           text=f"{QUOTE} [1] [7]")

    markup = Markup(render.render_answer(answer, 0))

    assert markup.attrs("a", "href") == ["#fn-src-0-1"]
    assert "7" in markup.plain


def test_an_unsupported_sentence_is_flagged() -> None:
    supported = Citation(1, passage(1), QUOTE, True, 0.9)
    invented = Sentence("Bramall was a Soviet planner [1]", (1,), False)
    answer = answer_citing(supported, text=f"{QUOTE} [1] Bramall was a Soviet planner [1]",
                           sentences=(Sentence(f"{QUOTE} [1]", (1,), True), invented))

    fragment = render.render_answer(answer, 0)
    markup = Markup(fragment)

    flagged = [a for t, a in markup.tags if t == "span" and "fn-unsupported" in str(a.get("class"))]
    assert len(flagged) == 1
    assert "unsupported" in markup.plain
    assert "1 sentence is not supported by a cited passage" in markup.plain
    assert markup.plain.index("Bramall was a Soviet planner") > markup.plain.index("Chinese Economic")


def test_the_supporting_sentence_is_highlighted_in_the_passage() -> None:
    card = render.render_sources([answer_citing(Citation(1, passage(1), QUOTE, True, 0.9))])

    assert f"<mark>{html.escape(QUOTE)}</mark>" in card


def test_a_quote_is_highlighted_across_different_whitespace() -> None:
    text = "First line.\nIn Chinese Economic   Development, Chris Bramall\nargues it."
    highlighted = render.highlight(text, "In Chinese Economic Development, Chris Bramall argues it.")

    assert Markup(highlighted).tags.count(("mark", {})) == 1
    assert highlighted.startswith("First line.<br><mark>In Chinese Economic")


def test_a_quote_not_in_the_passage_is_shown_beside_it() -> None:
    highlighted = render.highlight("Some passage.", "A sentence from elsewhere.")

    assert "Supporting sentence" in Markup(highlighted).plain
    assert "<mark>A sentence from elsewhere.</mark>" in highlighted


def test_card_shows_title_authors_page_and_file() -> None:
    cited = passage(1, title="Kharkov tractor plant", authors="R. Davies", page=2, source="kharkov.pdf")
    card = Markup(render.render_sources([answer_citing(Citation(1, cited, QUOTE, False, 0.2))])).plain

    for expected in ("Kharkov tractor plant", "R. Davies", "p.\u00a02", "kharkov.pdf", "unsupported"):
        assert expected in card


def test_a_refusal_lists_each_closest_document_once() -> None:
    closest = (passage(1, score=0.21), passage(2, score=0.15), passage(3, source="other.md", title="Other", score=0.1))
    refusal = Answer(question="Who won the 1958 FIFA World Cup?", text="The documents do not cover this.",
                     refused=True, closest=closest)

    bubble = Markup(render.render_answer(refusal, 4))
    panel = Markup(render.render_sources([None, None, None, None, refusal]))

    assert bubble.attrs("a", "href") == ["#fn-close-4-1", "#fn-close-4-3"]
    assert "not in the documents" in bubble.plain
    assert "2 passages" in bubble.plain
    assert panel.attrs("article", "id") == ["fn-close-4-1", "fn-close-4-2", "fn-close-4-3"]
    assert "Closest material" in panel.plain


def test_only_the_latest_turn_of_the_panel_is_current() -> None:
    one = answer_citing(Citation(1, passage(1), QUOTE, True, 0.9))
    panel = Markup(render.render_sources([one, None, one]))

    sections = [(a["id"], a["class"]) for t, a in panel.tags if t == "section"]
    assert sections == [("fn-turn-0", "fn-turn"), ("fn-turn-2", "fn-turn fn-current")]


def test_an_empty_conversation_shows_the_placeholder() -> None:
    assert render.render_sources([]) == render.SOURCES_PLACEHOLDER
    assert render.render_sources([None]) == render.SOURCES_PLACEHOLDER


def test_streaming_text_is_escaped_and_its_markers_are_not_links() -> None:
    markup = assert_inert(render.render_streaming("Partial <b>bold</b> answer [1]"))

    assert markup.attrs("a", "href") == []
    assert "Partial <b>bold</b> answer [1]" in markup.plain


def test_script_and_event_handlers_in_a_document_stay_text() -> None:
    payload = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=2">'
    cited = passage(1, text=f"It opened in 1932. {payload}", title=f"Notes {payload}",
                    authors=payload, source="evil.md")
    answer = Answer(question=f"When? {payload}", text=f"It opened in 1932. {payload} [1]",
                    citations=(Citation(1, cited, f"It opened in 1932. {payload}", True, 1.0),),
                    sentences=(Sentence(f"It opened in 1932. {payload} [1]", (1,), True),))

    for fragment in (render.render_answer(answer, 0), render.render_sources([answer]),
                     render.render_question(answer.question)):
        markup = assert_inert(fragment)
        assert payload in markup.plain
        assert "<script" not in fragment and "<img" not in fragment


def test_a_javascript_url_is_not_linked() -> None:
    cited = passage(1, url="javascript:alert(document.cookie)")
    card = render.render_sources([answer_citing(Citation(1, cited, QUOTE, True, 0.9))])

    assert "javascript:" not in card
    web = passage(1, url="https://example.org/a?b=1&c=<x>")
    linked = Markup(render.render_sources([answer_citing(Citation(1, web, QUOTE, True, 0.9))]))
    assert linked.attrs("a", "href") == ["https://example.org/a?b=1&c=<x>"]


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1, max_size=120), title=st.text(max_size=40), authors=st.text(max_size=30),
       question=st.text(min_size=1, max_size=60), url=st.text(max_size=40), page=st.none() | st.integers(1, 999))
def test_any_document_text_renders_as_inert_text(text: str, title: str, authors: str, question: str,
                                                  url: str, page: int | None) -> None:
    quote = text[len(text) // 3:]
    cited = passage(1, text=text, title=title, authors=authors, url=url, page=page)
    answer = Answer(question=question, text=f"{text} [1]", citations=(Citation(1, cited, quote, True, 0.9),),
                    sentences=(Sentence(f"{text} [1]", (1,), True),))
    refusal = Answer(question=question, text=text, refused=True, closest=(cited,))

    for fragment in (render.render_answer(answer, 0), render.render_sources([answer]),
                     render.render_answer(refusal, 1), render.render_sources([None, refusal]),
                     render.render_question(question), render.render_error(text)):
        assert_inert(fragment)
    panel = Markup(render.render_sources([answer])).plain
    assert (title or "seed.txt") in panel
    assert " ".join(text.split()) in " ".join(panel.split())


def test_a_citation_the_check_moved_is_marked() -> None:
    moved = Sentence(f"{QUOTE} [1]", (1,), True, attributed=True)
    answer = answer_citing(Citation(1, passage(1), QUOTE, True, 0.9), text=f"{QUOTE} [1]", sentences=(moved,))

    markup = Markup(render.render_answer(answer, 0))

    assert "citation corrected" in markup.plain
    assert any("citation check" in title for title in markup.attrs("span", "title"))
    plain = Markup(render.render_answer(answer_citing(Citation(1, passage(1), QUOTE, True, 0.9),
                                                      text=f"{QUOTE} [1]",
                                                      sentences=(Sentence(f"{QUOTE} [1]", (1,), True),)), 0))
    assert "citation corrected" not in plain.plain


def test_a_status_before_the_first_words_is_shown_escaped() -> None:
    payload = '<img src=x onerror="window.__pwned=1">'
    markup = assert_inert(render.render_streaming("", status=f"Found in the documents: “{payload}”."))
    assert payload in markup.plain
    assert render.SEARCHING in assert_inert(render.render_streaming("")).plain
    assert "Waiting for the local model" in render.render_streaming("", queued=2, status="Checking")
