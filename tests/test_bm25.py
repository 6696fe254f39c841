"""BM25 index: French matching, filtering before the cut, persistence and its failures."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from assistant.errors import IndexNotReadyError, QueryError
from assistant.indexing.bm25 import BM25Index

DOCS = {
    "rameau#0": "Le RAMEAU est un laboratoire de recherche sur les alliances d'intérêt général.",
    "guide-collectivites#3": (
        "Les collectivités territoriales et leurs élus peuvent nouer des partenariats avec "
        "les associations du territoire."
    ),
    "odd17#1": "L'ODD 17 invite à renforcer les partenariats pour atteindre les objectifs.",
    "mecenat#2": "Le mécénat de compétences permet aux salariés d'une entreprise de s'engager.",
    "fondations#5": "Une fondation finance des projets associatifs par des subventions.",
}


@pytest.fixture
def index() -> BM25Index:
    return BM25Index.build(list(DOCS), list(DOCS.values()))


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("Quel rôle pour une collectivité et un élu ?", "guide-collectivites#3"),
        ("collectivite elus", "guide-collectivites#3"),  # no accents, singular/plural
        ("c'est quoi l'odd17 ?", "odd17#1"),
        ("ODD 17", "odd17#1"),
        ("mecenat de competences en entreprises", "mecenat#2"),
        ("Qu'est-ce que le Rameau ?", "rameau#0"),
        ("Les fondations financent-elles des projets ?", "fondations#5"),
        ("What is the mecenat?", "mecenat#2"),
    ],
)
def test_best_document_first(index: BM25Index, query: str, best: str) -> None:
    results = index.search(query, k=3)
    assert results[0][0] == best
    assert all(a[1] >= b[1] > 0 for a, b in pairwise(results))


def test_only_matching_documents_and_k_cut(index: BM25Index) -> None:
    results = index.search("partenariats", k=10)
    assert {i for i, _ in results} == {"guide-collectivites#3", "odd17#1"}
    assert len(index.search("partenariats", k=1)) == 1


def test_allowed_filters_before_cut(index: BM25Index) -> None:
    both = [i for i, _ in index.search("partenariats", k=2)]
    assert len(both) == 2
    # The filter rejects the unfiltered winner: the runner-up must still come back for k=1.
    results = index.search("partenariats", k=1, allowed=lambda cid: cid != both[0])
    assert [i for i, _ in results] == [both[1]]
    assert index.search("partenariats", k=5, allowed=lambda cid: False) == []


def test_filter_digs_deep_in_large_index() -> None:
    ids = [f"c{i}" for i in range(500)]
    texts = ["alliance territoriale"] * 500
    index = BM25Index.build(ids, texts)
    results = index.search("alliance", k=3, allowed=lambda cid: cid in {"c499", "c7"})
    assert [i for i, _ in results] == ["c7", "c499"]  # equal scores: index order


def test_empty_query_and_unknown_words(index: BM25Index) -> None:
    assert index.search("", k=5) == []
    assert index.search("le la les de ?", k=5) == []
    assert index.search("zzzzunknown", k=5) == []


def test_bad_k(index: BM25Index) -> None:
    with pytest.raises(QueryError, match="0"):
        index.search("alliance", k=0)


def test_one_document_and_empty_index() -> None:
    one = BM25Index.build(["only"], ["Faire alliance avec une entreprise"])
    assert len(one) == 1
    assert [i for i, _ in one.search("alliances", k=5)] == ["only"]
    empty = BM25Index.build([], [])
    assert len(empty) == 0
    assert empty.search("alliance", k=5) == []
    blank = BM25Index.build(["a", "b"], ["", "le la"])
    assert len(blank) == 2
    assert blank.search("alliance", k=5) == []


def test_build_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 != 1"):
        BM25Index.build(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="'a'"):
        BM25Index.build(["a", "a"], ["x", "y"])


def test_save_load_round_trip(index: BM25Index, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "bm25"
    index.save(target)
    loaded = BM25Index.load(target)
    assert len(loaded) == len(index)
    for query in ("collectivités", "ODD 17", "mécénat", "fondation"):
        assert loaded.search(query, k=5) == index.search(query, k=5)
    assert [p.name for p in tmp_path.joinpath("deep").iterdir()] == ["bm25"]  # no temp left


def test_save_replaces_previous_index(index: BM25Index, tmp_path: Path) -> None:
    target = tmp_path / "bm25"
    index.save(target)
    BM25Index.build(["new"], ["nouvelle alliance"]).save(target)
    loaded = BM25Index.load(target)
    assert len(loaded) == 1
    assert loaded.search("alliance", k=5)[0][0] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]


def test_empty_index_round_trip(tmp_path: Path) -> None:
    BM25Index.build([], []).save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert len(loaded) == 0
    assert loaded.search("alliance", k=3) == []


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(IndexNotReadyError, match="refresh"):
        BM25Index.load(tmp_path / "nothing")


def test_load_corrupt_files(index: BM25Index, tmp_path: Path) -> None:
    target = tmp_path / "bm25"
    index.save(target)
    (target / "ids.json").write_text("[not json", encoding="utf-8")
    with pytest.raises(IndexNotReadyError, match="corrupt"):
        BM25Index.load(target)

    index.save(target)
    (target / "ids.json").write_text(json.dumps(["a"]), encoding="utf-8")
    with pytest.raises(IndexNotReadyError, match="mismatch"):
        BM25Index.load(target)

    index.save(target)
    for npy in (target / "model").glob("*.npy"):
        npy.write_bytes(b"\x00garbage")
    with pytest.raises(IndexNotReadyError, match="corrupt"):
        BM25Index.load(target)

    index.save(target)
    (target / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(IndexNotReadyError):
        BM25Index.load(target)


def test_load_rejects_other_tokenizer_version(index: BM25Index, tmp_path: Path) -> None:
    target = tmp_path / "bm25"
    index.save(target)
    manifest = json.loads((target / "manifest.json").read_text("utf-8"))
    manifest["tokenizer"] = "fr-0"
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexNotReadyError, match="another version"):
        BM25Index.load(target)
