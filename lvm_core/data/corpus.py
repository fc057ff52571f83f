"""Documents and corpora: what a corpus reader hands to the dataset builder.

A reader turns some source (a Debian doc package, the KJV database, a folder, a JSONL file)
into ordered `Document`s plus a `provenance` record saying exactly where the text came from, so
the store manifest can name the package, its version and a hash of the extracted text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


@dataclass(frozen=True)
class Document:
    """One ordered document. `text` holds paragraphs separated by blank lines."""

    id: str
    title: str
    text: str
    source: str = ""

    def paragraphs(self) -> list[str]:
        return [p for p in (part.strip() for part in self.text.split("\n\n")) if p]


@dataclass
class Corpus:
    """Documents in a fixed order, and the provenance of their text.

    `provenance` holds at least `reader` and `source`; package readers add `package` and
    `version`. `source_sha256` (over ids and texts, in order) is filled in on creation.
    """

    documents: list[Document]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.provenance = dict(self.provenance)
        self.provenance.setdefault("n_documents", len(self.documents))
        self.provenance.setdefault("source_sha256", corpus_sha256(self.documents))

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


def concat_corpora(corpora: list[Corpus]) -> Corpus:
    """One corpus from several (a pool of packages), in the order given; provenance lists each part."""
    if len(corpora) == 1:
        return corpora[0]
    docs = [d for c in corpora for d in c.documents]
    readers = sorted({str(c.provenance.get("reader", "")) for c in corpora})
    return Corpus(docs, {"reader": readers[0] if len(readers) == 1 else readers,
                         "source": [c.provenance.get("source") for c in corpora],
                         "parts": [c.provenance for c in corpora]})


def corpus_sha256(documents: Iterable[Document]) -> str:
    """sha256 over (id, title, text) of every document in order: same hash, same extracted text."""
    h = hashlib.sha256()
    for d in documents:
        for part in (d.id, d.title, d.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
    return h.hexdigest()
