"""The structure reranker: fragments and passages about their document step back; a passage
that opens on a list's later item continues the one before it. Documents here are written
unlike the shipped sample (another domain, other heading and list styles, a page break cutting
a sentence)."""

from __future__ import annotations

from pathlib import Path

from conftest import indexed_assistant

from assistant.indexing.store import StoredChunk
from assistant.retrieval.rerank import (
    KEEP_ORDER,
    StructureReranker,
    continues,
    lexical_query,
    shape,
)
from assistant.retrieval.results import Scored

SECTION = "Guide du jardin partagé > Créer le jardin"


def _chunk(cid: str, text: str, section: str = SECTION, index: int = 0) -> StoredChunk:
    meta = {"source": "jardins/guide.pdf", "title": "Guide", "section": section,
            "chunk_index": index}  # fmt: skip
    return StoredChunk(cid, text, meta)


def _scored(chunk: StoredChunk, fused: float) -> Scored:
    return Scored(chunk, fused=fused, dense=0.8, bm25=1.0, dense_rank=1, bm25_rank=1)


STEPS = _chunk(
    "steps",
    "Créer le jardin\n\nQuatre temps suffisent :\n"
    "▪ repérer une friche ou un terrain municipal inutilisé ;\n"
    "▪ réunir une dizaine de voisins prêts à donner deux heures par semaine ;\n"
    "▪ signer une convention d'occupation avec la mairie ;\n"
    "▪ prévoir un point d'eau et un abri à outils.",
)
ABOUT = _chunk(
    "about",
    "Créer le jardin\n\nLe présent livret décrit comment créer un jardin partagé dans son "
    "quartier, puis les aides que les communes accordent aux collectifs d'habitants.",
)
# The tail of a sentence a page break cut off: a heading and a few words.
TAIL = _chunk("tail", "Créer le jardin\n\nsans oublier l'assurance.", index=3)
PROSE = _chunk(
    "prose",
    "Créer le jardin\n\nUn jardin partagé est un terrain cultivé collectivement par les "
    "habitants d'un quartier. Les récoltes sont partagées entre les membres du collectif, et "
    "les parcelles communes accueillent les écoles du voisinage.",
)


def test_shapes_are_read_from_the_text_without_its_heading() -> None:
    assert not shape(STEPS).fragment and not shape(STEPS).about_document
    assert shape(ABOUT).about_document and not shape(PROSE).about_document
    assert shape(TAIL).fragment and not shape(PROSE).fragment


def test_a_list_question_gets_the_list_before_the_passage_about_the_document() -> None:
    results = [_scored(ABOUT, 0.14), _scored(TAIL, 0.13), _scored(PROSE, 0.125),
               _scored(STEPS, 0.12)]  # fmt: skip
    question = "Quelles sont les étapes pour créer un jardin partagé ?"
    ranked = [r.chunk.id for r in StructureReranker().rerank(question, results)]
    assert ranked.index("steps") < ranked.index("about")
    assert ranked.index("tail") > ranked.index("prose")
    assert KEEP_ORDER.rerank(question, results) == results  # the identity keeps the fused order


def test_a_definition_question_does_not_favour_lists() -> None:
    results = [_scored(PROSE, 0.13), _scored(STEPS, 0.12)]
    ranked = StructureReranker().rerank("Qu'est-ce qu'un jardin partagé ?", results)
    assert [r.chunk.id for r in ranked] == ["prose", "steps"]


def test_a_question_about_a_document_keeps_the_passage_that_describes_it() -> None:
    results = [_scored(ABOUT, 0.13), _scored(PROSE, 0.125)]
    ranked = StructureReranker().rerank("Que contient ce livret sur les jardins ?", results)
    assert ranked[0].chunk.id == "about"
    ranked = StructureReranker().rerank("Qui cultive un jardin partagé ?", results)
    assert ranked[0].chunk.id == "prose"


def test_the_assistant_ranks_the_steps_over_the_passage_that_announces_them(tmp_path: Path) -> None:
    jardins = (
        "# Jardins partagés\n\n## Présentation\n\n"
        "Ce document présente les étapes pour créer un jardin partagé et les aides des "
        "communes pour créer un jardin partagé.\n\n"
        "## Créer un jardin partagé\n\n"
        "Les habitants s'organisent ainsi :\n\n"
        "1. repérer une friche ou un terrain municipal inutilisé ;\n"
        "2. réunir une dizaine de voisins prêts à donner deux heures par semaine ;\n"
        "3. signer une convention d'occupation avec la mairie.\n\n"
        "## Les récoltes\n\n"
        "Les récoltes sont partagées entre les membres ; les écoles du voisinage viennent "
        "observer les parcelles au printemps et à l'automne.\n"
    )
    with indexed_assistant(tmp_path, {"boite-a-outils/jardins.md": jardins}) as a:
        hits = a.search("Quelles sont les étapes pour créer un jardin partagé ?", k=3)
    texts = [h.text for h in hits]
    steps = next(i for i, t in enumerate(texts) if "1. repérer une friche" in t)
    about = next(i for i, t in enumerate(texts) if "Ce document présente" in t)
    assert steps < about


def test_a_list_taken_up_past_its_first_item_comes_after_its_start(tmp_path: Path) -> None:
    items = [
        "recenser les bénévoles disponibles et leurs compétences, quartier par quartier, avant "
        "la première réunion publique du collectif",
        "choisir ensemble un nom, une adresse de contact et une personne chargée des échanges "
        "avec la mairie et les bailleurs sociaux",
        "dresser la liste des outils à acheter, à emprunter ou à récupérer auprès des "
        "ressourceries et des déchetteries voisines",
        "rédiger un règlement intérieur court qui fixe les horaires, l'arrosage et le partage "
        "des récoltes entre les familles inscrites",
        "ouvrir un compte bancaire au nom de l'association et fixer le montant de la cotisation "
        "annuelle des membres du jardin",
        "planifier les semis de printemps sur un calendrier affiché dans l'abri, avec les "
        "tâches de chaque semaine et leurs responsables",
        "organiser une fête des récoltes à l'automne pour faire connaître le jardin aux écoles "
        "et aux commerçants du quartier",
        "faire le bilan de la saison avec les membres et décider des parcelles à ouvrir l'année "
        "suivante aux nouveaux habitants",
    ]
    items = [*items, *(f"{item}, puis le noter dans le cahier du jardin" for item in items)]
    body = "\n".join(f"{n}. {item}." for n, item in enumerate(items, 1))
    jardin = {"boite-a-outils/jardin.md": f"# Monter un jardin\n\n## Démarrer\n\n{body}\n"}
    with indexed_assistant(tmp_path, jardin) as a:
        hits = a.search("fête des récoltes à l'automne noter dans le cahier du jardin", k=3)
    texts = [h.text for h in hits]
    end = next(i for i, t in enumerate(texts) if "15. organiser une fête" in t)
    first = int(texts[end].split("\n\n", 1)[1].split(".", 1)[0])  # the list was cut: 1 < first
    assert first > 1 and end > 0
    assert f"\n{first - 1}. " in texts[end - 1]  # the chunk it continues comes right before


def test_a_passage_start_is_added_only_from_the_chunks_being_served(tmp_path: Path) -> None:
    """A refresh in progress or killed half-way leaves another version's chunks in the lexical
    table: the start of a cut passage is taken only from chunks the search may show."""
    body = "\n".join(f"{n}. étape numéro {n} du jardin, à noter dans le cahier commun." for n in
                     range(1, 40))  # fmt: skip
    jardin = {"boite-a-outils/jardin.md": f"# Monter un jardin\n\n## Démarrer\n\n{body}\n"}
    with indexed_assistant(tmp_path, jardin) as a:
        searcher = a._get_searcher()
        chunks = sorted(searcher.lexical.chunks.values(), key=lambda c: c.metadata["chunk_index"])
        cut = next(c for c in chunks if int(c.metadata["chunk_index"]) > 0)
        results = [_scored(cut, 1.0)]
        assert [r.chunk.id for r in searcher._with_starts(results, 1, lambda cid: True)] == [
            chunks[int(cut.metadata["chunk_index"]) - 1].id,
            cut.id,
        ]
        hidden = chunks[int(cut.metadata["chunk_index"]) - 1].id
        assert searcher._with_starts(results, 1, lambda cid: cid != hidden) == results


def test_where_to_start_looks_for_the_steps_not_the_word_start(tmp_path: Path) -> None:
    assert lexical_query("Par où commencer ?").endswith("étapes")
    assert lexical_query("How do I start a repair café?").endswith("étapes")
    assert lexical_query("Qui a commencé le projet ?") == "Qui a commencé le projet ?"
    docs = {
        "boite-a-outils/ressourcerie.md": "# Ouvrir une ressourcerie\n\n## Un conseil\n\n"
        "Mieux vaut commencer petit : un garage prêté suffit les premiers mois, le temps de "
        "connaître les habitudes des donateurs du quartier. Les objets les plus demandés sont "
        "les meubles, la vaisselle et les vêtements d'enfants, que les familles viennent "
        "chercher le samedi matin.\n\n"
        "## Les étapes de la création\n\n"
        "1. Étudier les gisements d'objets du quartier avec la déchetterie.\n"
        "2. Réunir un collectif et déposer les statuts d'une association.\n"
        "3. Trouver un local et signer une convention avec la mairie.\n"
    }
    for n, topic in enumerate(["la collecte des piles", "le tri des textiles", "le compost"]):
        docs[f"boite-a-outils/autre-{n}.md"] = (
            f"# Fiche {n}\n\n## Repères\n\nCette fiche traite de {topic} dans une commune "
            "rurale, avec les chiffres de l'année et les contacts utiles du syndicat.\n"
        )
    with indexed_assistant(tmp_path, docs) as a:
        found = a.retrieve("Je veux ouvrir une ressourcerie, par où commencer ?", k=2)
    # the lexical side reads « étapes » too: the steps are its first passage
    by_bm25 = sorted(found.results, key=lambda r: r.bm25_rank or 99)
    assert "1. Étudier les gisements" in by_bm25[0].chunk.text


def test_a_passage_continues_one_cut_before_it_on_an_item_past_the_first() -> None:
    """« 4. » or « Phase 3 » opening a passage takes up a list begun before it; a section
    number (« 4.2 Les parcelles ») or a first item does not (``text.structure``)."""
    body = " les parcelles communes accueillent les écoles du voisinage chaque printemps."
    assert continues(_chunk("n", f"Créer le jardin\n\n4. Prévoir{body}"))
    assert continues(_chunk("s", f"Créer le jardin\n\nÉtape 3 : ouvrir{body}"))
    assert continues(_chunk("p", f"Créer le jardin\n\nPhase 2 — ouvrir{body}"))
    assert continues(_chunk("c", f"Créer le jardin\n\n2° Les{body}"))
    assert not continues(_chunk("1", f"Créer le jardin\n\n1. Prévoir{body}"))
    assert not continues(_chunk("d", f"Créer le jardin\n\n4.2 Les parcelles\n\nLes{body}"))
    assert not continues(_chunk("b", f"Créer le jardin\n\n▪ Prévoir{body}"))
