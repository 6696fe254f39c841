"""Chunks never span two pages, carry their page's metadata and get stable ids."""

from __future__ import annotations

from langchain_core.documents import Document

from assistant.ingest.chunking import chunk_id, split_pages

PROSE = " ".join(
    f"La phrase numéro {i} parle des alliances entre associations et entreprises."
    for i in range(60)
)


def test_chunks_stay_within_their_page_and_keep_metadata() -> None:
    pages = [
        Document(PROSE, metadata={"source": "a.pdf", "title": "A", "page": 1}),
        Document(
            "Page deux, courte mais assez longue pour un passage.",
            metadata={"source": "a.pdf", "title": "A", "page": 2},
        ),
    ]
    chunks = split_pages(pages, chunk_size=400, chunk_overlap=50)
    assert {c.metadata["page"] for c in chunks} == {1, 2}
    assert all(len(c.page_content) <= 400 for c in chunks if c.metadata["page"] == 1)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    last = chunks[-1]
    assert last.metadata["page"] == 2 and last.page_content.startswith("Page deux")
    assert all(c.id == c.metadata["chunk_id"] for c in chunks)
    # sentence boundaries: no chunk of page 1 starts mid-word
    assert all(c.page_content[0].isupper() for c in chunks if c.metadata["page"] == 1)


def test_ids_are_stable_and_depend_on_place_text_and_title() -> None:
    base = chunk_id("a.pdf", 1, "texte", "Titre")
    assert base == chunk_id("a.pdf", 1, "texte", "Titre")
    assert (
        len(
            {
                base,
                chunk_id("a.pdf", 2, "texte", "Titre"),
                chunk_id("b.pdf", 1, "texte", "Titre"),
                chunk_id("a.pdf", 1, "texte 2", "Titre"),
                chunk_id("a.pdf", 1, "texte", "Autre"),
            }
        )
        == 5
    )


def test_tiny_fragments_are_merged_and_repeats_dropped() -> None:
    page = Document(
        "Titre\n\n" + PROSE[:300] + "\n\n" + PROSE[:300], metadata={"source": "m.md", "title": "M"}
    )
    chunks = split_pages([page], chunk_size=320, chunk_overlap=0)
    assert chunks[0].page_content.startswith("Titre\n")  # the lone heading joined its paragraph
    assert len({c.page_content for c in chunks}) == len(chunks)
