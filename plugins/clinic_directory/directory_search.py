"""The clinic and physician index that the site search (``/search/``) reads beside Pagefind's.

Pagefind indexes the education pages (articles, treatments, conditions). Clinics and
physicians are searched here instead, by the words of what patients look them up by:
names, cities, states, treatments, conditions. The index is made from the registry
model, not from pages, so it costs a fraction of a second at 10,000 clinics, where
Pagefind over 35,000 clinic and physician pages took half a minute and gigabytes of
memory on every clinic edit (README, "Performance").

Files, relative to the index directory, written with ``geo.compact_json``:

``index.json``
    ``{"version": 1, "docs": N, "block": B, "shards": [key, ...]}``: how many documents
    there are, how many each document file holds, and which word shards exist (so that
    the page never asks for a file that is not there).
``words/<key>.json``
    ``{word: [[doc, ...], [doc, ...]]}`` for every word starting with ``key`` (its first
    two characters): the documents whose name has the word, then those that have it in
    another field. Documents are numbers, ascending.
``docs/<n>.json``
    documents ``n * B`` to ``n * B + B - 1``, each ``[kind, url, title, detail]``.

Words are what ``words()`` makes of text; ``theme/static/js/site-search.js`` splits a
query the same way and matches each of its words as a prefix.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from .geo import compact_json
from .model import Clinic, Physician, Registry
from .schema import US_STATES

INDEX_VERSION = 1
DOCS_PER_FILE = 256
SHARD_CHARS = 2  # a word is in the shard named by its first two characters
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=65536)  # treatment, condition and place names recur across clinics
def _words(text: str) -> frozenset[str]:
    return frozenset(words(text))


def words(text: str) -> list[str]:
    """The words of ``text`` as the index keeps them: accents removed, lower case, letters
    and digits only, at least two characters (a query's single letters match too much)."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [word for word in _WORD.findall(text.lower()) if len(word) >= SHARD_CHARS]


class Document(NamedTuple):
    kind: str  # what the result list labels it: "Clinic" or "Physician"
    url: str
    title: str
    detail: str  # one line under the title
    name: str  # text whose words rank first
    other: tuple[str, ...]  # other text to match

    def row(self) -> list[str]:
        return [self.kind, self.url, self.title, self.detail]


# A clinic's document and its physicians' (what ``clinic_documents`` makes), as plain tuples.
ClinicDocuments = tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]]


def _places(clinic: Clinic) -> list[str]:
    return sorted({f"{location.address.city}, {location.address.state}" for location in clinic.locations})


def clinic_document(clinic: Clinic) -> Document:
    places = _places(clinic)
    states = {US_STATES.get(location.address.state, "") for location in clinic.locations}
    return Document(
        "Clinic", clinic.url, clinic.name, "; ".join(places), clinic.name,
        (*places, *sorted(states), *(location.name for location in clinic.locations),
         *(entry.name for entry in (*clinic.services, *clinic.conditions)),
         *(alias for entry in (*clinic.services, *clinic.conditions) for alias in entry.also_known_as),
         *(physician.name for physician in clinic.physicians)))


def physician_document(physician: Physician, clinic: Clinic) -> Document:
    title = ", ".join((physician.name, *physician.credentials))
    places = _places(clinic)
    return Document("Physician", physician.url, title, " · ".join((clinic.name, *places[:1])), physician.name,
                    (*physician.credentials, *physician.board_certifications, clinic.name, *places))


def clinic_documents(clinic: Clinic) -> ClinicDocuments:
    """A clinic's document and its physicians', as plain tuples (they are kept per clinic between
    builds: ``cache.ClinicMemo``). Made from the clinic's entry and the treatments and conditions alone."""
    return (tuple(clinic_document(clinic)),
            tuple(tuple(physician_document(physician, clinic)) for physician in clinic.physicians))


def documents(registry: Registry) -> list[Document]:
    """Clinics by name, then physicians by name: the order results with equal scores keep."""
    return documents_of([clinic_documents(clinic) for clinic in registry.clinics_sorted()])


def documents_of(made: list[ClinicDocuments]) -> list[Document]:
    """``documents`` from each clinic's documents (``clinic_documents``, or what a past build made
    of it), clinics by name."""
    physicians = sorted((Document._make(doc) for _clinic, docs in made for doc in docs),
                        key=lambda doc: (doc.name.casefold(), doc.url))
    return [*(Document._make(clinic) for clinic, _docs in made), *physicians]


def index_files(docs: Iterable[Document]) -> dict[str, bytes]:
    """Every file of the index, as ``relative path -> bytes``."""
    rows: list[list[str]] = []
    postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for number, doc in enumerate(docs):
        rows.append(doc.row())
        in_name = _words(doc.name)
        for word in in_name:
            postings[word][0].append(number)
        for word in frozenset().union(*map(_words, doc.other)) - in_name:
            postings[word][1].append(number)
    shards: dict[str, dict[str, tuple[list[int], list[int]]]] = defaultdict(dict)
    for word, lists in postings.items():
        shards[word[:SHARD_CHARS]][word] = lists
    files = {f"words/{key}.json": compact_json(shard) for key, shard in shards.items()}
    for start in range(0, len(rows), DOCS_PER_FILE):
        files[f"docs/{start // DOCS_PER_FILE}.json"] = compact_json(rows[start:start + DOCS_PER_FILE])
    files["index.json"] = compact_json({"version": INDEX_VERSION, "docs": len(rows), "block": DOCS_PER_FILE,
                                        "shards": sorted(shards)})
    return files
