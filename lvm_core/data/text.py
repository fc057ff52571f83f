"""Text cleaning, HTML main-content extraction and the sentence-packing chunker.

Everything here is deterministic and uses the standard library only, so the same corpus always
gives the same chunks (and the same chunk-text hashes in the embedding cache).

The prose filter and chunker follow the measurements in the project's real-data notes: keep
paragraphs of at least 8 words of which at least 60 % are plain words; split sentences on
end punctuation followed by a capital, digit, quote or bracket; pack whole sentences greedily
into chunks of at most `chunk_words` words.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# ---- HTML --------------------------------------------------------------------------------

SKIP_TAGS = frozenset({"pre", "script", "style", "nav", "header", "footer", "noscript", "template"})
SKIP_CLASSES = frozenset({
    "highlight", "headerlink", "navheader", "navfooter", "rst-footer-buttons", "sphinxsidebar",
    "related", "toctree-wrapper", "literal-block", "programlisting", "screen", "footer", "navigation",
})
BLOCK_TAGS = frozenset({
    "p", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "div", "section",
    "blockquote", "br", "tr", "table", "ul", "ol", "dl", "article", "main", "aside", "figcaption",
})
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
VOID_TAGS = frozenset({"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed",
                       "source", "track", "wbr", "param"})


def _is_main(tag: str, attrs: dict[str, str]) -> bool:
    """Sphinx classic: div.body[role=main]; RTD theme: [itemprop=articleBody]; Django: #yui-main."""
    return (attrs.get("role") == "main" or attrs.get("itemprop") == "articleBody"
            or (tag == "div" and "body" in attrs.get("class", "").split())
            or attrs.get("id") == "yui-main" or tag == "main")


class _MainTextParser(HTMLParser):
    """Collects paragraphs of text inside the main-content element (or the whole body)."""

    def __init__(self, whole_body: bool, skip_classes: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.whole_body = whole_body
        self.skip_classes = skip_classes
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, opens main, opens skip)
        self.main_depth = 0
        self.skip_depth = 0
        self.body_depth = 0
        self.found_main = False
        self.paragraphs: list[str] = []
        self.buf: list[str] = []
        self.title = ""
        self.h1 = ""
        self._in_title = False
        self._in_h1 = False

    def _collecting(self) -> bool:
        inside = self.main_depth > 0 or (self.whole_body and self.body_depth > 0)
        return inside and self.skip_depth == 0

    def _flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        if text:
            self.paragraphs.append(text)
        self.buf = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: (v or "") for k, v in attrs_list}
        if tag in BLOCK_TAGS:
            self._flush()
        if tag == "title":
            self._in_title = True
        if tag in VOID_TAGS:
            return
        classes = set(attrs.get("class", "").split())
        # headings are not prose: they would glue onto the next sentence (the h1 is the title)
        skip = tag in SKIP_TAGS or tag in HEADING_TAGS or bool(classes & self.skip_classes)
        main = _is_main(tag, attrs)
        self.stack.append((tag, main, skip))
        if tag == "body":
            self.body_depth += 1
        if main:
            self.main_depth += 1
            self.found_main = True
        if skip:
            self.skip_depth += 1
        inside = self.main_depth > 0 or (self.whole_body and self.body_depth > 0)
        if tag == "h1" and not self.h1 and inside and self.skip_depth == 1:
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "h1":
            self._in_h1 = False
        if tag in BLOCK_TAGS:
            self._flush()
        if tag in VOID_TAGS or not any(t == tag for t, _, _ in self.stack):
            return
        while self.stack:  # pop to the matching tag: tolerates unclosed children
            t, main, skip = self.stack.pop()
            if t == "body":
                self.body_depth -= 1
            if main:
                self.main_depth -= 1
            if skip:
                self.skip_depth -= 1
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_h1:
            if self.skip_depth == 1:  # not the headerlink anchor inside the h1
                self.h1 += data
        elif self._collecting():
            self.buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def extract_html(html: str, *, whole_body: bool = False,
                 drop_classes: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """(title, paragraphs) of a page's main content; code, navigation and sidebars dropped.

    Without a main-content marker (DocBook, QDoc pages) or with `whole_body`, the whole
    <body> is read; `drop_classes` adds classes to skip (e.g. a package's own navigation).
    """
    skip = SKIP_CLASSES | drop_classes
    parser = _MainTextParser(whole_body, skip)
    parser.feed(html)
    parser.close()
    if not whole_body and not parser.found_main:
        parser = _MainTextParser(True, skip)
        parser.feed(html)
        parser.close()
    title = " ".join(parser.h1.split()) or " ".join(parser.title.split())
    return title, parser.paragraphs


# ---- Markdown and plain text ---------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_TAG = re.compile(r"<[^>]+>")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MD_EMPH = re.compile(r"(\*\*|__|\*|`)")


def markdown_paragraphs(text: str) -> list[str]:
    """Paragraphs of a Markdown or plain-text file: fenced and indented code dropped, markup removed."""
    out: list[str] = []
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        para = " ".join(" ".join(buf).split())
        if para:
            out.append(para)
        buf.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if not line.strip():
            flush()
            continue
        if line.startswith("    ") or line.startswith("\t"):  # indented code block
            if not buf:
                continue
        if _MD_HEADING.match(line):  # a heading is not prose (the reader takes the title from it)
            flush()
            continue
        if _MD_LIST.match(line):
            flush()
            line = _MD_LIST.sub("", line)
        line = _MD_LINK.sub(r"\1", line)
        line = _MD_TAG.sub("", line)
        line = _MD_EMPH.sub("", line)
        buf.append(line.strip())
    flush()
    return [p for p in out if p]


# ---- prose filter ---------------------------------------------------------------------------

_PLAIN_WORD = re.compile(r"^[(\"'“‘]?[A-Za-z]+(?:['’-][A-Za-z]+)*[.,;:!?)\"'”’]*$")


def is_prose(paragraph: str, *, min_words: int = 8, min_plain: float = 0.6) -> bool:
    """True for a paragraph of at least `min_words` words, `min_plain` of them plain words.

    Drops headings, navigation crumbs, tables of symbols and code that slipped past the HTML
    filter, while keeping sentences that mention `code` or numbers.
    """
    words = paragraph.split()
    if len(words) < min_words:
        return False
    plain = sum(1 for w in words if _PLAIN_WORD.match(w))
    return plain >= min_plain * len(words)


def clean_paragraphs(paragraphs: list[str], *, min_words: int = 8, min_plain: float = 0.6) -> list[str]:
    """Whitespace normalised; tiny fragments and non-prose paragraphs dropped."""
    out = []
    for p in paragraphs:
        p = " ".join(p.split())
        if is_prose(p, min_words=min_words, min_plain=min_plain):
            out.append(p)
    return out


# ---- sentences and chunks -------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(“‘])")


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph: split after . ! ? when a capital, digit, quote or ( follows."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(paragraph)) if s]


def chunk_text(paragraphs: list[str], chunk_words: int = 120) -> list[str]:
    """Pack whole sentences greedily into chunks of at most `chunk_words` words.

    A chunk closes when the next sentence would take it past `chunk_words`. A sentence longer
    than `chunk_words` is cut into pieces of `chunk_words` words (the last piece continues the
    packing). Paragraph breaks do not close a chunk: a document is one stream of sentences.
    """
    if chunk_words < 1:
        raise ValueError("chunk_words must be >= 1")
    chunks: list[str] = []
    cur: list[str] = []
    n_cur = 0
    for para in paragraphs:
        for sentence in split_sentences(para):
            words = sentence.split()
            while len(words) > chunk_words:  # an over-long sentence: full pieces first
                if cur:
                    chunks.append(" ".join(cur))
                    cur, n_cur = [], 0
                chunks.append(" ".join(words[:chunk_words]))
                words = words[chunk_words:]
            if not words:
                continue
            if n_cur + len(words) > chunk_words and cur:
                chunks.append(" ".join(cur))
                cur, n_cur = [], 0
            cur.append(" ".join(words))
            n_cur += len(words)
    if cur:
        chunks.append(" ".join(cur))
    return chunks


def word_count(text: str) -> int:
    return len(text.split())
