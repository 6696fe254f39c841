"""Composition rules of issue 15 on a document written unlike the shipped sample: a club's
practical sheet in HTML (FAQ headings in <h3>, a pointer to another document, a resources list)
and questions in a newcomer's words. Each rule is general: none depends on the sample's wording."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HashEmbeddings

from assistant.answering.abstention import expected_kind, missing_entities, named_entities
from assistant.answering.extractive import (
    ExtractiveAnswerer,
    also_asked_items,
    asked_count,
    asks_yes_no,
    defined_subject,
    lexical_overlap,
    split_units,
    states_yes_no,
)
from assistant.indexing.store import StoredChunk
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import load_document
from assistant.retrieval.hybrid import Retrieval, Scored
from assistant.text.french import tokenize

SHEET = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Fiche pratique : le jardin partagé du quartier</title></head><body><main><article>
<h1>Fiche pratique : le jardin partagé du quartier</h1>
<h3>Faut-il une assurance pour ouvrir le jardin au public ?</h3>
<p>Beaucoup de bénévoles pensent que le contrat de la mairie suffit pour ouvrir le jardin.
Il ne couvre pourtant que le terrain : une assurance responsabilité civile du collectif reste
indispensable pour les ateliers ouverts au public. Les modalités sont détaillées dans la fiche
assurance du réseau. Le jardin ouvre chaque samedi matin.</p>
<h3>Les quatre règles du jardin</h3>
<p>Le collectif applique quatre règles simples :</p>
<ul><li>pas de pesticides ;</li><li>une parcelle par foyer ;</li>
<li>l'arrosage partagé par roulement ;</li><li>un atelier ouvert chaque mois.</li></ul>
<h3>Ressources</h3>
<ul><li>Le guide du jardin partagé de la ville (2019).</li>
<li>La charte des jardins partagés du réseau régional.</li>
<li>Le calendrier des semis du collectif.</li></ul>
</article></main></body></html>"""


def _stored(
    tmp_path: Path, rel: str, text: str | None = None, size: int = 900
) -> list[StoredChunk]:
    """The chunks of the document ``tmp_path/rel`` (``text`` written there first) as the store
    holds them: loaded, chunked ``size`` characters with no overlap."""
    path = tmp_path / rel
    if text is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    loaded = load_document(path, tmp_path)
    docs = chunk_document(loaded.pages, loaded.blocks, size, 0)
    return [StoredChunk(str(d.id), d.page_content, dict(d.metadata)) for d in docs]


def _chunks(tmp_path: Path) -> list[StoredChunk]:
    return _stored(tmp_path, "outils/jardin.html", SHEET, size=300)


def _ask(question: str, hits: list[StoredChunk], every: list[StoredChunk]) -> str:
    emb = HashEmbeddings()

    def section_chunks(chunk: StoredChunk) -> list[StoredChunk]:
        sid = chunk.metadata.get("section_id")
        return [c for c in every if c.metadata.get("section_id") == sid]

    results = [Scored(c, 1.0 / (i + 1), 0.95, 1.0, i + 1, i + 1) for i, c in enumerate(hits)]
    retrieval = Retrieval(question, emb.embed_query(question), results, lambda t: 1, section_chunks)
    answer = ExtractiveAnswerer(emb, threshold=0.5).answer(question, retrieval)
    assert answer.grounded, answer.text
    return answer.text


def test_the_sentence_after_the_matched_one_is_quoted_and_pointers_are_not(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path)
    question = "Le contrat de la mairie suffit-il pour ouvrir le jardin au public ?"
    faq = [c for c in chunks if "assurance" in c.metadata["section"]]
    others = [c for c in chunks if c not in faq]
    text = _ask(question, faq + others, chunks)
    # the matched sentence says what people think; the next one answers
    assert "Il ne couvre pourtant que le terrain" in text
    assert "Beaucoup de bénévoles" in text  # and « Il » keeps its antecedent
    assert "détaillées dans la fiche" not in text  # a pointer to another text answers nothing


def test_a_list_off_the_subject_does_not_replace_the_sentence_that_answers(
    tmp_path: Path,
) -> None:
    chunks = _chunks(tmp_path)
    rules = [c for c in chunks if "règles" in c.metadata["section"]]
    resources = [c for c in chunks if c.metadata["section"].endswith("Ressources")]
    text = _ask("Quelles sont les quatre règles du jardin partagé ?", rules + resources, chunks)
    assert "pas de pesticides" in text and "un atelier ouvert chaque mois" in text
    assert "calendrier des semis" not in text
    # the resources list has three items, not the four the question asks for
    assert asked_count("Quelles sont les quatre règles du jardin ?") == 4
    assert asked_count("What are the three steps?") == 3
    assert asked_count("Quelles sont les règles ?") is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Quelles sont les étapes pour trouver un mécène quand on est un petit club ?", None),
        ("Que faire lorsqu'une commune refuse le projet ?", None),
        ("Quand la convention est-elle signée ?", "date"),
        ("La réponse du jury arrive quand ?", "date"),
        ("Depuis quand le réseau existe-t-il ?", "date"),
        ("Jusqu'à quand peut-on déposer un dossier ?", "date"),
        ("Quand est-ce que le jury se réunit ?", "date"),
    ],
)
def test_quand_joining_two_clauses_asks_no_date(question: str, kind: str | None) -> None:
    assert expected_kind(question) == kind


def test_a_word_opening_the_second_sentence_of_a_question_is_not_a_name() -> None:
    question = "Comment utiliser la Charte au début ? Quelles sont les étapes ?"
    assert named_entities(question) == ["charte"]
    assert named_entities("Le rôle du RNMA en Belgique ? Et Mbappé ?") == [
        "rnma",
        "belgique",
        "mbappe",
    ]
    # an acronym written with dots in the passages is found
    assert missing_entities("Que veut dire MEDOC ?", ["les « M.E.D.O.C. » : Méthodes…"]) == []


GUIDE_MD = """# Créer une épicerie solidaire

Ce document accompagne les bénévoles qui veulent ouvrir une épicerie solidaire.

## Le parcours en quatre phases

Chaque phase prend quelques semaines.

### Phase 1 – Mesurer le besoin

Interrogez les travailleurs sociaux et les familles du quartier avant toute décision. Un
questionnaire court suffit.

### Phase 2 – Trouver un local

Cherchez un local accessible, au rez-de-chaussée, près des transports. La mairie connaît
souvent des locaux vacants.

### Phase 3 – Nouer les partenariats d'approvisionnement

Signez des conventions avec la banque alimentaire et deux ou trois commerces du quartier.
Les invendus des commerces complètent l'offre.

### Phase 4 – Ouvrir et évaluer

Ouvrez d'abord deux demi-journées par semaine, puis faites le bilan avec les familles après
six mois.

## Les financements possibles

La caisse d'allocations familiales et le département financent souvent le démarrage.
"""


def test_steps_written_as_headings_are_answered_with_the_whole_outline(tmp_path: Path) -> None:
    chunks = _stored(tmp_path, "outils/epicerie.md", GUIDE_MD)
    emb = HashEmbeddings()
    # retrieval found phases 3 and 2, not the first one
    hits = [c for c in chunks if "Phase 3" in c.metadata["section"]]
    hits += [c for c in chunks if "Phase 2" in c.metadata["section"]]
    question = "Quelles sont les étapes pour ouvrir une épicerie solidaire ?"
    results = [Scored(c, 1.0 / (i + 1), 0.95, 1.0, i + 1, i + 1) for i, c in enumerate(hits)]
    retrieval = Retrieval(
        question,
        emb.embed_query(question),
        results,
        lambda t: 1,
        None,
        lambda chunk: sorted(chunks, key=lambda c: int(c.metadata["chunk_index"])),
    )
    answer = ExtractiveAnswerer(emb, threshold=0.5).answer(question, retrieval)
    assert answer.grounded
    lines = answer.text.split("\n")
    assert lines[0].startswith("D'après « Créer une épicerie solidaire »")
    assert [ln.split(" –")[0] for ln in lines[1:]] == [
        "- Phase 1",
        "- Phase 2",
        "- Phase 3",
        "- Phase 4",
    ]
    assert lines[1].startswith("- Phase 1 – Mesurer le besoin : Interrogez les travailleurs")
    assert "financent" not in answer.text
    assert lines[0] == (
        "D'après « Créer une épicerie solidaire » (section « Le parcours en quatre phases ») :"
    )


def _plan_pdf(path: Path) -> Path:
    """A PDF with numbered headings (« 1. », « 2. ») and a numbered list of five priorities."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", fname="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    pdf.add_font("DejaVu", style="B", fname="/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    pdf.add_page()

    def line(width: float, height: float, text: str) -> None:
        pdf.multi_cell(width, height, text, new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("DejaVu", style="B", size=15)
    line(0, 8, "Plan local pour la jeunesse 2025")
    pdf.set_font("DejaVu", style="B", size=12)
    line(0, 7, "1. Les priorités du plan local pour la jeunesse")
    pdf.set_font("DejaVu", size=10)
    line(
        0,
        5,
        "Le plan local pour la jeunesse de la communauté de communes fixe ses priorités pour "
        "la jeunesse du territoire après une large concertation du plan.",
    )
    for n, item in enumerate(
        [
            "ouvrir un lieu d'accueil le soir ;",
            "financer le permis de conduire ;",
            "créer un conseil des jeunes ;",
            "soutenir les stages en entreprise ;",
            "développer le sport en plein air.",
        ],
        1,
    ):
        line(0, 5, f"{n}. {item}")
    pdf.set_font("DejaVu", style="B", size=12)
    line(0, 7, "2. Le budget")
    pdf.set_font("DejaVu", size=10)
    line(
        0,
        5,
        "Le Fonds Jeunesse 2025 est l'outil financier du plan. Sa dotation atteint 2 M€ sur "
        "trois ans, versés par la région et le département.",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def test_a_list_with_as_many_items_as_asked_wins_and_asked_numbers_are_no_value(
    tmp_path: Path,
) -> None:
    _plan_pdf(tmp_path / "outils" / "plan-jeunesse.pdf")
    chunks = _stored(tmp_path, "outils/plan-jeunesse.pdf")
    priorities = [c for c in chunks if "priorités" in c.metadata["section"]]
    budget = [c for c in chunks if "budget" in c.metadata["section"]]
    question = "Quelles sont les cinq priorités du plan local pour la jeunesse ?"
    text = _ask(question, priorities, chunks)
    assert "1. ouvrir un lieu d'accueil le soir" in text
    assert "5. développer le sport en plein air" in text
    # « 2025 » names the fund: the sentence holding the amount is the answer
    assert expected_kind("Le Fonds Jeunesse 2025 était doté de combien ?") == "amount"
    text = _ask("Le Fonds Jeunesse 2025 était doté de combien ?", budget, chunks)
    assert "2 M€" in text


FAQ_HTML = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Jardins partagés : questions fréquentes</title></head><body><main><article>
<h1>Jardins partagés : questions fréquentes</h1>
<h2>Peut-on vendre les légumes du jardin ?</h2>
<p>Non, sauf si le jardin est géré par une association déclarée qui tient une comptabilité.
Les dons entre jardiniers restent possibles.</p>
<h2>Qui entretient les allées ?</h2>
<p>Les jardiniers, à tour de rôle, selon un planning affiché à l'entrée.</p>
</article></main></body></html>"""

ECHO_MD = """# Le marché du quartier

Au marché du samedi, les légumes se vendent bien, disent les habitants.
"""


def test_the_answer_under_a_heading_asking_the_question_comes_first(tmp_path: Path) -> None:
    chunks: list[StoredChunk] = []
    for name, body in (("faq.html", FAQ_HTML), ("marche.md", ECHO_MD)):
        chunks += _stored(tmp_path, f"outils/{name}", body)
    question = "Est-ce qu'on peut vendre les légumes du jardin partagé ?"
    echo = [c for c in chunks if c.metadata["source"].endswith("marche.md")]
    faq = [c for c in chunks if "vendre" in c.metadata.get("section", "")]
    emb = HashEmbeddings()
    results = [Scored(c, 1.0 / (i + 1), 0.95, 1.0, i + 1, i + 1) for i, c in enumerate(echo + faq)]
    retrieval = Retrieval(question, emb.embed_query(question), results, lambda t: 1)
    answer = ExtractiveAnswerer(emb, threshold=0.5, max_sentences=1).answer(question, retrieval)
    assert answer.grounded
    # the other document echoes the question more closely; the FAQ's answer wins
    assert "Non, sauf si le jardin est géré par une association déclarée" in answer.text


def test_a_rewritten_follow_up_is_read_by_its_new_ask() -> None:
    from assistant.retrieval.followup import asked_part, contextualize

    history = [{"role": "user", "content": "Combien de bénévoles compte le jardin partagé ?"}]
    standalone = contextualize("et ils viennent quand ?", history)
    assert standalone == "ils viennent quand (bénévoles compte le jardin partagé) ?"
    # the kind of answer is read in the new ask: a time, not the count of the first question
    assert asked_part(standalone) == "ils viennent quand ?"
    assert expected_kind(asked_part(standalone)) == "date"
    history = [{"role": "user", "content": "Où le réseau a-t-il été fondé ?"}]
    assert contextualize("et pourquoi à cet endroit ?", history) == (
        "pourquoi à cet endroit (le réseau a-t-il été fondé) ?"
    )
    assert asked_part("Quelles sont les étapes (du projet) du jardin ?") == (
        "Quelles sont les étapes (du projet) du jardin ?"
    )


def test_a_pdf_whose_font_dropped_the_ti_ligature_is_read_repaired(tmp_path: Path) -> None:
    """What pypdf gives for a font without the « ti » glyph (« collec vités », « Transi on »),
    written into a real PDF: the loader rejoins the words, so the index and answers have them."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", fname="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    pdf.add_page()
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(
        0,
        6,
        "Le programme accompagne les collec vités dans la Transi on écologique. La décision "
        "est transmise à la collectivité fin novembre au plus tard, après avis de la Direc on "
        "régionale et de l'organisa on porteuse.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    path = tmp_path / "outils" / "programme.pdf"
    path.parent.mkdir(parents=True)
    pdf.output(str(path))
    text = " ".join(load_document(path, tmp_path).pages[0].page_content.split())
    assert "les collectivités dans la Transition écologique" in text
    assert "la Direction régionale et de l'organisation porteuse" in text


def test_rare_question_words_weigh_more_in_the_overlap() -> None:
    """A yes/no question about a tribune in the press: the sentence holding its rare words
    (« tribune », « presse ») outranks the one holding its common ones (« loi », « texte »)."""
    question = "Le texte de loi a-t-il reçu le soutien d'une tribune dans la presse ?"
    common = "Le texte de loi a été déposé au printemps, puis le texte a été renvoyé en commission."
    rare = "Une tribune parue dans la presse nationale l'a défendu."
    frequency = {t: 1 for t in tokenize(rare)} | {t: 400 for t in tokenize(common)}

    def df(term: str) -> int:
        return frequency.get(term, 0)

    assert lexical_overlap(question, common) >= lexical_overlap(question, rare)  # unweighted
    assert lexical_overlap(question, rare, df) > lexical_overlap(question, common, df)
    assert lexical_overlap(question, question, df) == pytest.approx(1.0)
    assert lexical_overlap("", rare, df) == 0.0


ROUTES = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Randonnées du club</title></head><body><main><article>
<h1>Randonnées du club</h1>
<h2>Préparer une sortie</h2>
<p>Une sortie du club se prépare en cinq étapes :</p>
<ol><li>choisir le sentier ;</li><li>vérifier la météo ;</li><li>prévenir le refuge ;</li>
<li>réunir le groupe ;</li><li>partir tôt.</li></ol>
<h2>Le parcours du dimanche</h2>
<p>Le parcours du dimanche relie six étapes :</p>
<ol><li>le moulin ;</li><li>le lavoir ;</li><li>la chapelle ;</li><li>le col ;</li>
<li>la source ;</li><li>le belvédère.</li></ol>
</article></main></body></html>"""


def test_a_question_that_counts_the_items_gets_the_list_of_that_many(tmp_path: Path) -> None:
    every = _stored(tmp_path, "club/randonnees.html", ROUTES)
    five = next(c for c in every if "cinq étapes" in c.text)
    six = next(c for c in every if "six étapes" in c.text)
    for question in ("Quelles sont les six étapes ?", "Quelles sont les 6 étapes de la sortie ?"):
        text = _ask(question, [five, six], every)
        assert "le belvédère" in text and "choisir le sentier" not in text, text
    text = _ask("Quelles sont les cinq étapes ?", [six, five], every)
    assert "choisir le sentier" in text and "le belvédère" not in text, text


@pytest.mark.parametrize(
    ("question", "polar"),
    [
        ("Faut-il un bureau élu pour signer la convention ?", True),
        ("Est-ce que le club prête son matériel ?", True),
        ("le club, ça prend des débutants ?", True),
        ("Y a-t-il une cotisation réduite ?", True),
        ("Can beginners join the club?", True),
        ("Qui signe la convention ?", False),
        ("Comment s'inscrire au club ?", False),
        ("Où se trouve le local ?", False),
    ],
)
def test_yes_no_questions_are_told_apart(question: str, polar: bool) -> None:
    assert asks_yes_no(question) is polar


CLUB = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Foire aux questions du club</title></head><body><main><article>
<h1>Foire aux questions du club</h1>
<h2>Faut-il un bureau élu pour signer une convention ?</h2>
<p>Les petites associations se posent souvent la question du bureau. Un bureau élu n'est pas
obligatoire pour signer une convention. Il suffit qu'un membre mandaté par l'assemblée signe,
après un vote consigné au procès-verbal. Les statuts types du réseau prévoient ce mandat.
Le réseau tient ces statuts à la disposition des clubs.</p>
</article></main></body></html>"""


def test_a_yes_no_answer_keeps_the_sentence_after_the_best_one(tmp_path: Path) -> None:
    every = _stored(tmp_path, "club/faq.html", CLUB)
    text = _ask("Faut-il un bureau élu pour signer une convention ?", every[:1], every)
    assert "Un bureau élu n'est pas obligatoire pour signer une convention." in text
    assert "Il suffit qu'un membre mandaté par l'assemblée signe" in text, text


PLAN = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Plan vélo de la communauté de communes</title></head><body><main><article>
<h1>Plan vélo de la communauté de communes</h1>
<h2>Le plan adopté en conseil</h2>
<p>Le conseil communautaire a adopté son plan vélo en mars, après six mois de concertation
avec les habitants. Il retient trois axes :</p>
<ul><li>des pistes continues entre les bourgs ;</li><li>des garages sécurisés en gare ;</li>
<li>une aide à l'achat pour les ménages modestes.</li></ul>
</article></main></body></html>"""


def test_a_list_is_quoted_with_its_short_lead_in_and_what_it_refers_to(tmp_path: Path) -> None:
    every = _stored(tmp_path, "mobilite/plan-velo.html", PLAN)
    text = _ask("Quels sont les trois axes du plan vélo ?", every[:1], every)
    assert "Il retient trois axes : [1]" in text, text
    assert "Le conseil communautaire a adopté son plan vélo en mars" in text  # who « il » is
    assert text.index("Il retient trois axes") < text.index("des pistes continues")
    assert "une aide à l'achat pour les ménages modestes." in text


COMPOST = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Le compostage partagé en pied d'immeuble</title></head><body><main><article>
<h1>Le compostage partagé en pied d'immeuble</h1>
<h2>Un succès dans les quartiers</h2>
<p>Les habitants qui se lancent dans le compostage partagé racontent souvent la même chose : on
commence pour les déchets, on reste pour les voisins. Le compostage partagé séduit aussi les
bailleurs, qui y voient un moyen de réduire les ordures ménagères.</p>
<h2>Définition</h2>
<p>Dans le compostage partagé, un site collectif reçoit les épluchures de plusieurs foyers,
qui les déposent dans des bacs communs. Un référent formé veille au mélange du compost.</p>
</article></main></body></html>"""


def test_a_definition_question_prefers_the_definition_section(tmp_path: Path) -> None:
    assert defined_subject("et le compostage partagé alors, c'est quoi ?") == {
        "compostag",
        "partag",
    }
    every = _stored(tmp_path, "quartier/compost.html", COMPOST)
    assert len(every) == 2
    text = _ask("Qu'est-ce que le compostage partagé ?", every, every)
    assert "un site collectif reçoit les épluchures de plusieurs foyers" in text, text


def test_a_list_cut_by_chunks_is_read_whole_from_a_lower_ranked_passage(tmp_path: Path) -> None:
    # small chunks: the lists cut between items
    every = _stored(tmp_path, "club/randonnees.html", ROUTES, size=120)
    six = [c for c in every if "Le parcours du dimanche" in c.metadata.get("section", "")]
    assert len(six) >= 2
    others = [c for c in every if c not in six]
    # the end of the six-step list ranks fourth, below three passages of the other section
    text = _ask("Quelles sont les six étapes du parcours ?", [*others[:3], six[-1]], every)
    assert "le moulin" in text and "le belvédère" in text, text


FETE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>La fête du quartier des Tilleuls</title></head><body><main><article>
<h1>La fête du quartier des Tilleuls</h1>
<h2>Une fête qui grandit</h2>
<p>La fête du quartier des Tilleuls a lieu chaque année en juin sur la place du marché. Elle a
réuni plus de huit cents habitants l'an dernier. Les voisins y apportent des plats à partager.
La préparation de la fête est confiée à deux structures :</p>
<ul><li>le Comité des fêtes de la ville ;</li><li>l'Union des commerçants des Tilleuls.</li></ul>
</article></main></body></html>"""


def test_a_who_answer_quotes_the_list_of_names_announced_after_it(tmp_path: Path) -> None:
    every = _stored(tmp_path, "quartier/fete.html", FETE)
    text = _ask("Qui prépare la fête du quartier des Tilleuls ?", every[:1], every)
    assert "La préparation de la fête est confiée à deux structures :" in text, text
    assert "le Comité des fêtes de la ville" in text and "l'Union des commerçants" in text


SEEDS_FAQ_MD = """# Bibliothèque de la Roseraie : vos questions

## Qu'est-ce qu'une grainothèque ?

C'est un meuble en libre accès où chacun dépose et emprunte des semences. On y trouve surtout
des tomates anciennes et des haricots, récoltés par les habitants. Elle se veut un lieu
d'entraide entre jardiniers du quartier.

## Faut-il s'inscrire ?

Non, l'accès est libre aux heures d'ouverture.
"""

SEEDS_NEWS_MD = """# Nouvelles du quartier

La grainothèque de la bibliothèque a fêté ses deux ans : la grainothèque a reçu cent visiteurs.
Une seconde grainothèque ouvrira à l'école, et la grainothèque de la mairie suivra.
"""


def test_a_faq_answer_that_does_not_name_its_subject_is_quoted_whole(tmp_path: Path) -> None:
    """The sentences under « Qu'est-ce qu'une grainothèque ? » answer it, although only
    the heading names the subject and another page repeats the word more often."""
    chunks: list[StoredChunk] = []
    for name, body in (("news.md", SEEDS_NEWS_MD), ("faq.md", SEEDS_FAQ_MD)):
        chunks += _stored(tmp_path, f"biblio/{name}", body)
    news = [c for c in chunks if c.metadata["source"].endswith("news.md")]
    faq = [c for c in chunks if "grainoth" in c.metadata.get("section", "")]
    assert faq and news
    text = _ask("Qu'est-ce qu'une grainothèque ?", news + faq, chunks)
    assert "C'est un meuble en libre accès" in text, text
    assert "tomates anciennes" in text, text
    assert "un lieu d'entraide" in text, text
    assert "l'accès est libre" not in text, text


SEEDS_GUIDE_HTML = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Le troc de graines</title></head><body><main><article>
<h1>Le troc de graines</h1>
<h2>Une pratique ancienne</h2>
<p>Le troc de graines est un échange gratuit de semences entre jardiniers amateurs, sans
argent ni contrat. Les jardiniers du quartier en parlent souvent et le troc de graines attire
chaque printemps de nouveaux jardiniers.</p>
<h2>Comment il fonctionne</h2>
<p>Trois rôles s'y partagent le travail :</p>
<ul><li>le récolteur, qui sèche et trie les semences ;</li>
<li>le gardien, qui tient le registre des dépôts ;</li>
<li>l'animateur, qui organise les journées d'échange.</li></ul>
</article></main></body></html>"""


def test_a_definition_that_also_asks_for_its_parts_gets_the_list_naming_them(
    tmp_path: Path,
) -> None:
    assert also_asked_items("c'est quoi le troc de graines et ses rôles ?") == {"rol"}
    assert also_asked_items("Qui finance le troc et pourquoi ?") == set()
    every = _stored(tmp_path, "jardin/troc.html", SEEDS_GUIDE_HTML)
    text = _ask("c'est quoi le troc de graines et ses rôles ?", every, every)
    assert "un échange gratuit de semences" in text, text
    assert "le récolteur" in text and "l'animateur" in text, text


def test_a_table_caption_is_not_taken_for_its_header(tmp_path: Path) -> None:
    """A captioned HTML table: its rows are quoted under the column titles, not the caption."""
    path = tmp_path / "club" / "tarifs.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Tarifs</title>
<h1>Tarifs du club de lecture</h1><p>Le club propose deux formules, révisées chaque année
par le bureau élu de l'association.</p>
<table><caption>Formules d'adhésion 2025</caption>
<thead><tr><th>Formule</th><th>Prix annuel</th></tr></thead>
<tbody><tr><td>Solo</td><td>12 euros</td></tr><tr><td>Famille</td><td>20 euros</td></tr>
</tbody></table></body></html>""",
        encoding="utf-8",
    )
    loaded = load_document(path, tmp_path)
    docs = chunk_document(loaded.pages, loaded.blocks, 900, 0)
    items = [t for d in docs for t, item in split_units(d.page_content) if item]
    assert "- Solo — Prix annuel : 12 euros" in items, items
    assert not any(t.startswith("- Formule") for t in items), items


RULES_HTML = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Accès au jardin</title></head><body><main><article>
<h1>Accès au jardin de la Butte</h1>
<h2>Les conditions d'accès</h2>
<p>Pour obtenir une parcelle, il faut remplir les conditions suivantes :</p>
<ul><li>habiter le quartier de la Butte ;</li><li>adhérer à l'association du jardin ;</li>
<li>participer à deux chantiers collectifs par an.</li></ul>
<h2>Une révision en 2022</h2>
<p>Les conditions d'accès ont été assouplies en 2022 par le conseil municipal, qui a supprimé
l'obligation d'habiter le quartier.</p>
</article></main></body></html>"""


def test_a_yes_no_question_naming_a_list_noun_is_answered_by_a_sentence(tmp_path: Path) -> None:
    """« Les conditions … ont été assouplies ? » asks yes or no: the sentence that says so is
    quoted, not only the list of conditions; « les conditions d'accès ? » still asks the list."""
    assert states_yes_no("Les conditions d'accès au jardin ont été assouplies ?")
    assert states_yes_no("Les modes de partenariat sont-ils cumulables ?")
    assert not states_yes_no("les conditions d'accès au jardin ?")
    assert not states_yes_no("Quelles sont les conditions d'accès ?")
    every = _stored(tmp_path, "jardin/acces.html", RULES_HTML)
    listed = [c for c in every if "parcelle" in c.text] + [
        c for c in every if "parcelle" not in c.text
    ]
    text = _ask("Les conditions d'accès au jardin ont été assouplies ?", listed, every)
    assert "assouplies en 2022" in text, text
    text = _ask("les conditions d'accès au jardin ?", listed, every)
    assert "participer à deux chantiers collectifs" in text, text


MEDIATHEQUE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>La médiathèque intercommunale du Val d'Orge</title></head><body><main><article>
<h1>La médiathèque intercommunale du Val d'Orge</h1>
<h2>Le financement de la médiathèque</h2>
<p>Le budget de fonctionnement de la médiathèque repose sur deux financeurs.</p>
<h3>La part de la communauté de communes</h3>
<p>La communauté de communes du Val d'Orge verse chaque année une dotation de 410 000 euros
pour le personnel et les collections.</p>
<h3>La part du département</h3>
<p>Le conseil départemental de l'Essonne ajoute une subvention de 65 000 euros pour la
lecture publique en zone rurale.</p>
<h2>Les horaires</h2>
<p>La médiathèque ouvre du mardi au samedi, de 10 heures à 18 heures.</p>
</article></main></body></html>"""


def test_a_short_section_that_announces_is_read_with_its_subsections(tmp_path: Path) -> None:
    every = _stored(tmp_path, "culture/mediatheque.html", MEDIATHEQUE, size=300)
    intro = [c for c in every if c.metadata["section"].endswith("Le financement de la médiathèque")]
    hours = [c for c in every if "Les horaires" in c.metadata["section"]]
    assert len(intro) == 1 and hours
    emb = HashEmbeddings()
    question = "Qui verse une dotation au budget de la médiathèque ?"

    def section_chunks(chunk: StoredChunk) -> list[StoredChunk]:
        return [c for c in every if c.metadata.get("section_id") == chunk.metadata["section_id"]]

    def document_chunks(chunk: StoredChunk) -> list[StoredChunk]:
        return sorted(every, key=lambda c: int(c.metadata["chunk_index"]))

    # only the announcing section and an unrelated one were retrieved, not their subsections
    results = [
        Scored(c, 1.0 / (i + 1), 0.95, 1.0, i + 1, i + 1) for i, c in enumerate(intro + hours)
    ]
    retrieval = Retrieval(
        question, emb.embed_query(question), results, lambda t: 1, section_chunks, document_chunks
    )
    answer = ExtractiveAnswerer(emb, threshold=0.5).answer(question, retrieval)
    assert answer.grounded, answer.text
    assert "communauté de communes du Val d'Orge verse" in answer.text, answer.text
    # the quoted sentence is cited from the chunk it was read in
    assert any("410 000" in c.text for c in answer.citations), answer.citations
