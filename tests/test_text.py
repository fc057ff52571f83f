"""Cleaning, HTML extraction and the chunker, on hand-made cases whose answers are known."""

from __future__ import annotations

from lvm_core.data.text import (
    chunk_text,
    clean_paragraphs,
    extract_html,
    is_prose,
    markdown_paragraphs,
    split_sentences,
)


def words(n: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


def sentence(n: int, stem: str) -> str:
    """A sentence of exactly n words ending in a period, starting with a capital."""
    return "S" + stem + " " + words(n - 1, stem) + "."


# ---- sentences and chunks ---------------------------------------------------------------------

def test_split_sentences_on_end_punctuation_before_capital_digit_or_quote():
    text = 'Hello there. This is e.g. fine? Yes! 3 items follow. "Quoted" too. (Bracket) ends'
    assert split_sentences(text) == ["Hello there.", "This is e.g. fine?", "Yes!", "3 items follow.",
                                     '"Quoted" too.', "(Bracket) ends"]


def test_split_sentences_keeps_dotted_names_together():
    assert split_sentences("Call os.path.join() here. then lower case stays.") == [
        "Call os.path.join() here. then lower case stays."]


def test_chunker_packs_whole_sentences_and_closes_before_passing_the_limit():
    a, b, c = sentence(50, "a"), sentence(50, "b"), sentence(30, "c")
    chunks = chunk_text([a + " " + b, c], chunk_words=120)
    # 50 + 50 = 100 fits; adding 30 would make 130 > 120, so the third sentence starts chunk 2.
    assert chunks == [a + " " + b, c]
    assert [len(ch.split()) for ch in chunks] == [100, 30]


def test_chunker_exact_fit_stays_in_one_chunk():
    a, b = sentence(60, "a"), sentence(60, "b")
    assert chunk_text([a, b], chunk_words=120) == [a + " " + b]


def test_chunker_cuts_an_overlong_sentence_into_full_pieces():
    long = sentence(250, "x")
    tail = sentence(20, "t")
    chunks = chunk_text([sentence(10, "h"), long, tail], chunk_words=120)
    assert [len(ch.split()) for ch in chunks] == [10, 120, 120, 10 + 20]
    assert " ".join(chunks).split() == (sentence(10, "h") + " " + long + " " + tail).split()  # nothing lost


def test_chunker_crosses_paragraph_boundaries_and_is_deterministic():
    paras = [sentence(40, "p") for _ in range(7)]
    first = chunk_text(paras, chunk_words=100)
    assert first == chunk_text(list(paras), chunk_words=100)
    assert [len(ch.split()) for ch in first] == [80, 80, 80, 40]


def test_chunker_chunk_words_is_configurable():
    paras = [sentence(10, "q") for _ in range(6)]
    assert [len(c.split()) for c in chunk_text(paras, chunk_words=25)] == [20, 20, 20]


# ---- prose filter ------------------------------------------------------------------------------

def test_is_prose_needs_eight_words():
    assert is_prose("one two three four five six seven eight")
    assert not is_prose("one two three four five six seven")


def test_is_prose_needs_sixty_percent_plain_words():
    # 10 words, 6 plain: exactly 60 % passes; 5 plain does not.
    six = "alpha beta gamma delta epsilon zeta x=1 f(y) a_b 42"
    five = "alpha beta gamma delta epsilon x=1 f(y) a_b 42 {}"
    assert is_prose(six)
    assert not is_prose(five)


def test_clean_paragraphs_normalises_whitespace_and_drops_fragments():
    paras = ["  This   paragraph has\nenough plain words to be kept here.  ", "Next", "x = f(a, b) + g[c]; y->z"]
    assert clean_paragraphs(paras) == ["This paragraph has enough plain words to be kept here."]


# ---- HTML --------------------------------------------------------------------------------------

SPHINX_PAGE = """<!DOCTYPE html><html><head><title>json — JSON encoder &amp; decoder — Docs</title>
<script>var x = "not text";</script><style>p {color: red}</style></head>
<body>
<div class="related"><ul><li><a href="index.html">index</a></li><li>modules |</li></ul></div>
<div class="sphinxsidebar">Table of Contents lots of sidebar navigation text here</div>
<div class="body" role="main">
  <h1>json — JSON encoder and decoder<a class="headerlink" href="#json">¶</a></h1>
  <p>The json module exposes an API familiar to users of the standard library marshal and pickle modules.</p>
  <div class="highlight-python3"><div class="highlight"><pre>import json
json.dumps(['foo'])</pre></div></div>
  <p>Encoding basic Python object hierarchies is <code>easy</code> &amp; quick<br>and reliable.</p>
  <ul><li>First item of a list with words.</li><li>Second item.</li></ul>
</div>
<footer>Copyright footer text that should never appear</footer>
</body></html>"""


def test_extract_html_keeps_main_content_only():
    title, paras = extract_html(SPHINX_PAGE)
    assert title == "json — JSON encoder and decoder"
    assert paras == [
        "The json module exposes an API familiar to users of the standard library marshal and pickle modules.",
        "Encoding basic Python object hierarchies is easy & quick",
        "and reliable.",
        "First item of a list with words.",
        "Second item.",
    ]
    joined = " ".join(paras)
    for absent in ("import json", "sidebar", "index", "footer", "not text", "color", "¶"):
        assert absent not in joined


def test_extract_html_without_main_marker_reads_the_body_minus_navigation():
    docbook = """<html><head><title>5.1. Table Basics</title></head><body>
    <div class="navheader"><table><tr><td>Prev</td><td>Up</td><td>Next</td></tr></table></div>
    <div class="sect1"><h2 class="title">5.1. Table Basics</h2>
    <p>A table in a relational database is much like a table on paper.</p>
    <pre class="programlisting">CREATE TABLE t (a int);</pre></div>
    <div class="navfooter">Prev Home Next</div></body></html>"""
    title, paras = extract_html(docbook)
    assert title == "5.1. Table Basics"  # no h1: the <title>
    assert paras == ["A table in a relational database is much like a table on paper."]


def test_extract_html_tolerates_unclosed_tags():
    html = "<html><body><div role='main'><h1>T</h1><p>First paragraph <b>bold<p>Second paragraph</div><p>after</p>"
    title, paras = extract_html(html)
    assert title == "T"
    assert paras == ["First paragraph bold", "Second paragraph"]


# ---- Markdown ------------------------------------------------------------------------------------

def test_markdown_paragraphs_drop_code_headings_and_markup():
    md = """# Title here

Some **bold** text with a [link](http://x.y) and `code`
continued on a second line.

```python
print("dropped")
```

    indented code is dropped

- a list item with words
- another item

~~~
also dropped
~~~
Last paragraph.
"""
    assert markdown_paragraphs(md) == [
        "Some bold text with a link and code continued on a second line.",
        "a list item with words",
        "another item",
        "Last paragraph.",
    ]
