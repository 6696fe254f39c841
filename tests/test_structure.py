"""Structure at load time, chunks of whole blocks and answers composed by what is asked, on
documents written unlike the shipped sample: a regulation-style PDF (« TITRE I », « Article 3 – »,
« III. », bold short lines, bullets that wrap) and an HTML page with nested lists and a table."""

from __future__ import annotations

from pathlib import Path

from conftest import HashEmbeddings
from fpdf import FPDF
from langchain_core.documents import Document

from assistant.answering.citations import compose
from assistant.answering.extractive import ExtractiveAnswerer, split_units
from assistant.indexing.store import StoredChunk
from assistant.ingest.chunking import chunk_document, split_blocks
from assistant.ingest.loaders import load_document
from assistant.ingest.loaders.structure import blocks_from_text, render_blocks
from assistant.retrieval.hybrid import Retrieval, Scored

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DEJAVU_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

ELIGIBILITY = [
    "être une association déclarée depuis au moins deux ans à la date du dépôt du dossier",
    "porter un projet mené avec au moins une entreprise et une collectivité du territoire",
    "présenter un budget prévisionnel équilibré",
    "s'engager à transmettre un bilan à la fin du programme",
]


def _regulation_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("DejaVu", fname=DEJAVU)
    pdf.add_font("DejaVu", style="B", fname=DEJAVU_BOLD)

    def bold(text: str, size: float = 11) -> None:
        pdf.set_font("DejaVu", style="B", size=size)
        pdf.multi_cell(0, 7, text)
        pdf.set_font("DejaVu", size=10)

    def para(text: str) -> None:
        pdf.set_font("DejaVu", size=10)
        pdf.multi_cell(90, 5, text)  # a narrow column: every line is short
        pdf.ln(3)

    pdf.add_page()
    bold("Règlement du programme Territoires solidaires", 16)
    pdf.ln(2)
    bold("TITRE I – Dispositions générales", 13)
    para(
        "Le présent règlement fixe les règles du programme. Il s'applique à toutes les "
        "candidatures déposées pendant l'année."
    )
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(0, 6, "Article 3 – Conditions d'éligibilité")
    para("Pour être éligible, le porteur de projet doit remplir les conditions suivantes :")
    for item in ELIGIBILITY:
        pdf.multi_cell(90, 5, f"• {item} ;")
    pdf.ln(3)
    bold("Qui instruit les dossiers")
    para(
        "Le programme est lancé par la Région. Les dossiers sont instruits par un comité "
        "composé de la Fondation Horizon et de la Chambre régionale de l'ESS."
    )
    bold("III. Calendrier", 13)
    para(
        "Le dossier complet est déposé sur la plateforme. La décision du comité est "
        "transmise à la collectivité fin novembre au plus tard."
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def test_pdf_blocks_read_headings_lists_and_their_lead_in(tmp_path: Path) -> None:
    path = _regulation_pdf(tmp_path / "outils" / "reglement.pdf")
    blocks = load_document(path, tmp_path).blocks
    headings = [(b.text, b.level) for b in blocks if b.kind == "heading"]
    titles = [t for t, _ in headings]
    assert "TITRE I – Dispositions générales" in titles
    assert "Article 3 – Conditions d'éligibilité" in titles
    assert "Qui instruit les dossiers" in titles  # a bold short line
    assert "III. Calendrier" in titles
    lists = [b for b in blocks if b.kind == "list"]
    assert len(lists) == 1
    (conditions,) = lists
    assert conditions.lead_in.endswith("les conditions suivantes :")
    assert len(conditions.items) == 4  # wrapped bullets stay whole
    assert conditions.items[0].startswith("• être une association déclarée")
    assert conditions.items[0].endswith("dépôt du dossier ;")
    assert conditions.path[-1] == "Article 3 – Conditions d'éligibilité"


def _retrieval(question: str, hits: list[Document], every: list[Document]) -> Retrieval:
    emb = HashEmbeddings()

    def stored(d: Document) -> StoredChunk:
        return StoredChunk(str(d.id), d.page_content, dict(d.metadata))

    table = [stored(d) for d in every]

    def section_chunks(chunk: StoredChunk) -> list[StoredChunk]:
        sid = chunk.metadata.get("section_id")
        return [c for c in table if c.metadata.get("section_id") == sid]

    results = [
        Scored(stored(d), 1.0 / (i + 1), 0.95, 1.0, i + 1, i + 1) for i, d in enumerate(hits)
    ]
    return Retrieval(question, emb.embed_query(question), results, lambda t: 1, section_chunks)


def test_a_list_question_gets_the_whole_list_from_its_first_item(tmp_path: Path) -> None:
    path = _regulation_pdf(tmp_path / "outils" / "reglement.pdf")
    loaded = load_document(path, tmp_path)
    # small chunks: the list is cut between items, the lead-in repeated
    chunks = split_blocks(loaded.pages, loaded.blocks, chunk_size=260, chunk_overlap=0)
    listed = [c for c in chunks if c.metadata["section"].endswith("Conditions d'éligibilité")]
    assert len(listed) >= 2
    assert all(c.page_content.startswith("Article 3 – Conditions d'éligibilité") for c in listed)
    assert not any(c.page_content.strip() in {"III. Calendrier"} for c in chunks)  # no heading-only
    # retrieval found only the end of the list: the answerer reads its section
    question = "Quelles sont les conditions d'éligibilité du programme ?"
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5)
    answer = answerer.answer(question, _retrieval(question, [listed[-1]], chunks))
    assert answer.grounded
    framing, *lines = answer.text.split("\n")
    title = loaded.title
    assert framing == f"D'après « {title} » (section « Article 3 – Conditions d'éligibilité ») :"
    assert lines[0].startswith("Pour être éligible") and lines[0].endswith(": [1]")
    quoted = [ln for ln in lines if ln.startswith("•")]
    assert len(quoted) == 4 and quoted[0].startswith("• être une association déclarée")


def test_who_and_when_questions_get_the_sentence_with_that_value(tmp_path: Path) -> None:
    path = _regulation_pdf(tmp_path / "outils" / "reglement.pdf")
    loaded = load_document(path, tmp_path)
    chunks = chunk_document(loaded.pages, loaded.blocks, 900, 0)
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5, max_sentences=1)
    when = "Quand la décision du comité est-elle transmise ?"
    calendar = [c for c in chunks if c.metadata["section"].endswith("III. Calendrier")]
    answer = answerer.answer(when, _retrieval(when, calendar, chunks))
    assert answer.grounded and "fin novembre au plus tard" in answer.text  # « fin novembre »
    who = "Qui instruit les dossiers du programme ?"
    jury = [c for c in chunks if c.metadata["section"].endswith("Qui instruit les dossiers")]
    answer = answerer.answer(who, _retrieval(who, jury, chunks))
    assert answer.grounded and "Fondation Horizon" in answer.text


NESTED_HTML = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Monter une coopérative de quartier</title></head><body>
<nav><a href="/">Accueil</a></nav>
<main><article>
<h1>Monter une coopérative de quartier</h1>
<p>Ce guide présente d'abord la démarche, puis les outils de financement disponibles.</p>
<h2>Les étapes de la démarche</h2>
<p>La démarche se déroule en trois temps :</p>
<ol>
<li>Réunir les habitants et les commerçants autour d'un besoin commun.</li>
<li>Choisir la forme juridique :
  <ul><li>une association pour démarrer ;</li><li>une SCIC pour associer la commune.</li></ul>
</li>
<li>Signer une convention avec la mairie et les partenaires financeurs.</li>
</ol>
<h2>Les financements</h2>
<table>
<tr><th>Financeur</th><th>Montant</th></tr>
<tr><td>Région</td><td>jusqu'à 20 000 €</td></tr>
<tr><td>Fondation locale</td><td>5 000 €</td></tr>
</table>
<p>Tous financent sur deux ans au plus. Les demandes se font au printemps.</p>
</article></main>
<footer>Mentions légales</footer></body></html>"""


def test_html_blocks_keep_nested_lists_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "outils" / "cooperative.html"
    path.parent.mkdir(parents=True)
    path.write_text(NESTED_HTML, encoding="utf-8")
    loaded = load_document(path, tmp_path)
    kinds = [b.kind for b in loaded.blocks]
    assert "list" in kinds and "table" in kinds
    steps = next(b for b in loaded.blocks if b.kind == "list")
    assert steps.lead_in == "La démarche se déroule en trois temps :"
    assert steps.path[-1] == "Les étapes de la démarche"
    assert len(steps.items) == 3
    assert steps.items[1] == (
        "2. Choisir la forme juridique : une association pour démarrer ; une SCIC pour associer "
        "la commune."
    )
    table = next(b for b in loaded.blocks if b.kind == "table")
    assert table.rows[0] == ("Financeur", "Montant")
    assert ("Région", "jusqu'à 20 000 €") in table.rows
    assert "Mentions légales" not in loaded.pages[0].page_content

    chunks = chunk_document(loaded.pages, loaded.blocks, 900, 0)
    question = "Comment monter une coopérative de quartier, quelles sont les étapes ?"
    hits = [c for c in chunks if "étapes" in c.metadata["section"]]
    answer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5).answer(
        question, _retrieval(question, hits, chunks)
    )
    assert answer.grounded
    assert "Ce guide présente" not in answer.text  # about the document, not the subject
    lines = answer.text.split("\n")
    assert lines[0].endswith("(section « Les étapes de la démarche ») :")
    assert lines[1].startswith("La démarche se déroule en trois temps :")
    assert [ln[:2] for ln in lines[2:]] == ["1.", "2.", "3."]


def test_english_question_gets_an_english_framing_line(tmp_path: Path) -> None:
    path = tmp_path / "outils" / "cooperative.html"
    path.parent.mkdir(parents=True)
    path.write_text(NESTED_HTML, encoding="utf-8")
    loaded = load_document(path, tmp_path)
    chunks = chunk_document(loaded.pages, loaded.blocks, 900, 0)
    question = "What are the steps to set up a neighbourhood cooperative?"
    hits = [c for c in chunks if "étapes" in c.metadata["section"]]
    answer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5).answer(
        question, _retrieval(question, hits, chunks)
    )
    assert answer.grounded
    assert answer.text.split("\n")[0] == (
        "From the French-language sources « Monter une coopérative de quartier » "
        "(section « Les étapes de la démarche »), quoted in French:"
    )


def test_plain_text_structure_numbered_headings_and_wrapped_numbers() -> None:
    text = (
        "Chapitre 2 : Le financement\n\n"
        "2.1 Les leviers\n"
        "Trois leviers existent :\n"
        "a) le mécénat ;\n"
        "b) les fonds publics ;\n"
        "c) la vente de services.\n\n"
        "Le fonds a soutenu des projets portés par le\n"
        "Fonds ODD\n"
        "17. Ils sont présentés plus loin."
    )
    blocks = blocks_from_text(text)
    assert [(b.kind, b.level) for b in blocks if b.kind == "heading"] == [
        ("heading", 1),
        ("heading", 2),
    ]
    levers = next(b for b in blocks if b.kind == "list")
    assert levers.lead_in == "Trois leviers existent :"
    assert levers.items == ("a) le mécénat ;", "b) les fonds publics ;", "c) la vente de services.")
    assert levers.path == ("Chapitre 2 : Le financement", "2.1 Les leviers")
    last = blocks[-1]
    assert last.kind == "paragraph" and "Fonds ODD 17. Ils sont" in last.text


def _table_pdf(path: Path) -> Path:
    """A programme's calendar as a bordered table with wrapping cells, then a page of prose set
    in two columns (aligned lines that are not a table)."""
    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("DejaVu", fname=DEJAVU)
    pdf.add_font("DejaVu", style="B", fname=DEJAVU_BOLD)
    pdf.add_page()
    pdf.set_font("DejaVu", style="B", size=15)
    pdf.multi_cell(0, 8, "Calendrier de l'appel à projets", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=10)
    pdf.multi_cell(
        0, 5, "Chaque phase a son responsable et sa date limite.", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(4)
    rows = [
        ("Phase", "Responsable", "Échéance"),
        ("Dépôt des candidatures", "Porteurs de projet, avec l'appui du réseau local", "15 mars"),
        ("Instruction", "Comité technique régional", "30 avril"),
        ("Décision et notification aux lauréats", "Jury", "fin mai au plus tard"),
    ]
    with pdf.table(col_widths=(60, 80, 40), text_align="LEFT") as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.ln(4)
    pdf.multi_cell(
        0,
        5,
        "Le calendrier peut être adapté en cas de force majeure.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.add_page()
    pdf.set_font("DejaVu", style="B", size=15)
    pdf.multi_cell(0, 8, "Pourquoi s'allier", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=10)
    left = (
        "Les alliances locales réunissent des acteurs qui ne se parlaient pas. Elles "
        "demandent du temps, de la confiance et une animation régulière entre partenaires."
    )
    right = (
        "Les communes rurales y trouvent des moyens, des idées et des relais pour agir sur "
        "les besoins de leurs habitants, avec les entreprises du territoire."
    )
    third = "Des résultats visibles au bout de quelques mois, quand chacun y trouve son compte."
    y = pdf.get_y()
    for x, text in ((10, left), (75, right), (140, third)):
        pdf.set_xy(x, y)
        pdf.multi_cell(55, 5, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def test_pdf_table_is_read_as_a_table_and_a_steps_question_quotes_its_rows(
    tmp_path: Path,
) -> None:
    path = _table_pdf(tmp_path / "outils" / "calendrier.pdf")
    loaded = load_document(path, tmp_path)
    tables = [b for b in loaded.blocks if b.kind == "table"]
    assert len(tables) == 1  # the two prose columns are not a table
    (calendar,) = tables
    assert calendar.rows[0] == ("Phase", "Responsable", "Échéance")
    assert len(calendar.rows) == 4  # wrapped cells stay in their row
    assert calendar.rows[1] == (
        "Dépôt des candidatures",
        "Porteurs de projet, avec l'appui du réseau local",
        "15 mars",
    )
    assert calendar.rows[3][0] == "Décision et notification aux lauréats"
    assert not any(b.kind == "heading" and b.text.startswith("Phase") for b in loaded.blocks)
    chunks = split_blocks(loaded.pages, loaded.blocks, chunk_size=900, chunk_overlap=0)
    question = "Quelles sont les phases de l'appel à projets ?"
    hit = next(c for c in chunks if "| Phase |" in c.page_content)
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5)
    answer = answerer.answer(question, _retrieval(question, [hit], chunks))
    assert answer.grounded
    rows = [ln for ln in answer.text.split("\n") if ln.startswith("- ")]
    assert [r.split(" — ")[0] for r in rows] == [
        "- Dépôt des candidatures",
        "- Instruction",
        "- Décision et notification aux lauréats",
    ]
    assert "Responsable : Comité technique régional ; Échéance : 30 avril" in rows[1]


# Statutes written with « ▪ » bullets, lettered items and « 1° » (French legal numbering).
STATUTES = (
    "Pour déposer une demande, le dossier comprend les pièces suivantes :\n"
    "▪ les statuts signés par deux membres du bureau ;\n"
    "▪ le dernier rapport financier approuvé.\n\n"
    "Le bureau de l'association se compose comme suit :\n"
    "a) un président élu pour deux ans ;\n"
    "b) un trésorier chargé des comptes.\n\n"
    "Les ressources de l'association comprennent :\n"
    "1° les cotisations de ses membres ;\n"
    "2° les subventions des collectivités."
)


def test_the_answerer_reads_every_list_item_the_loader_keeps() -> None:
    """One definition of a list item (``text.structure``): what the loader keeps as an item
    with its own marker, the answerer quotes as an item, on its own line."""
    blocks = blocks_from_text(STATUTES)
    assert [b.kind for b in blocks] == ["list", "list", "list"]
    loaded = [item for b in blocks for item in b.items]
    units = split_units(render_blocks(blocks))
    assert [u for u, is_item in units if is_item] == loaded
    assert [u for u, is_item in units if not is_item] == [b.lead_in for b in blocks]
    lines = compose([(u, n) for n, (u, _) in enumerate(units, start=1)]).splitlines()
    assert lines[1] == "▪ les statuts signés par deux membres du bureau ; [2]"
    assert lines[3] == "a) un président élu pour deux ans ; [5]"
    assert lines[5] == "1° les cotisations de ses membres ; [8]"


def test_section_numbers_and_years_are_not_list_items() -> None:
    text = (
        "4.2 Du face-à-face au côte-à-côte\n"
        "En 2011. Les associations et les entreprises ont appris à travailler ensemble sur "
        "leur territoire, au-delà du mécénat.\n"
        "12) Un douzième point, numéroté, qui reste un élément de liste."
    )
    units = split_units(text)
    assert [u for u, is_item in units if is_item] == [
        "12) Un douzième point, numéroté, qui reste un élément de liste."
    ]
