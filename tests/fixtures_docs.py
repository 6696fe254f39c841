"""Generators of real corpus files, good and bad, for loader, indexer and "bad inputs" tests.

Each ``write_*`` function writes one file at ``path`` (parents created) and returns the path.
Import from a test in ``tests/``: ``from fixtures_docs import write_report_pdf``.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, StreamObject

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

REPORT_HEADER = "Le RAMEAU — Guide des alliances 2024"
REPORT_PAGES: tuple[str, ...] = (
    "Faire alliance en France\n\n"
    "Les alliances entre associations et entreprises se multiplient depuis dix ans. "
    "Elles répondent à des besoins concrets des territoires.\n\n"
    "Un parte-\nnariat réussi commence par un diagnostic partagé des besoins.",
    "Les quatre modes de partenariat\n\n"
    "Le mécénat, les pratiques responsables, la coopération économique et l'innovation "
    "sociétale sont les quatre modes de relation entre structures.\n\n"
    "- le mécénat de compétences\n- la co-\nconstruction de projets",
    "Évaluer l'impact\n\n"
    "L'évaluation porte sur la pertinence, la performance et l'impact de l'alliance "
    "sur le territoire et ses habitants.",
    "Conclusion\n\n"
    "Faire alliance demande du temps, de la confiance et une gouvernance claire entre "
    "les partenaires, ainsi que l'efficacité des ﬁnancements.",
)


def _pdf() -> FPDF:
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", fname=DEJAVU)
    pdf.set_font("DejaVu", size=11)
    return pdf


def text_pdf_bytes(
    pages: Sequence[str],
    *,
    header: str | None = None,
    page_numbers: bool = False,
    title: str | None = None,
) -> bytes:
    """A PDF with one page per text ("\\n" = new line, "\\n\\n" = new paragraph)."""
    pdf = _pdf()
    if title is not None:
        pdf.set_title(title)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            pdf.cell(0, 8, header, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        pdf.multi_cell(0, 6, text)
        if page_numbers:
            pdf.set_y(-20)
            pdf.cell(0, 8, f"Page {number} / {len(pages)}", align="C")
    return bytes(pdf.output())


def write_report_pdf(path: Path, *, title: str | None = None) -> Path:
    """4 pages: running header, "Page n / 4" footer, "parte-/nariat" and "co-/construction"
    split at line ends, a list, the ﬁ ligature. See ``REPORT_PAGES``."""
    data = text_pdf_bytes(REPORT_PAGES, header=REPORT_HEADER, page_numbers=True, title=title)
    return _write(path, data)


def write_truncated_pdf(path: Path, keep: float = 0.6) -> Path:
    """The report PDF cut after ``keep`` of its bytes (an interrupted download)."""
    data = text_pdf_bytes(REPORT_PAGES, header=REPORT_HEADER, page_numbers=True)
    return _write(path, data[: int(len(data) * keep)])


def write_encrypted_pdf(path: Path, password: str = "alliance2024") -> Path:
    """The report PDF encrypted with AES-256, opening only with ``password``."""
    reader = PdfReader(io.BytesIO(text_pdf_bytes(REPORT_PAGES, header=REPORT_HEADER)))
    writer = PdfWriter(clone_from=reader)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(path, buffer.getvalue())


def write_image_pdf(path: Path, pages: int = 2) -> Path:
    """A scan: pages holding only a picture of text, no text layer."""
    pdf = _pdf()
    image = Image.new("RGB", (600, 300), "white")
    draw = ImageDraw.Draw(image)
    for y in range(30, 280, 30):
        draw.rectangle((40, y, 560, y + 12), fill="black")  # lines of "text"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    for _ in range(pages):
        pdf.add_page()
        pdf.image(io.BytesIO(buffer.getvalue()), x=20, y=20, w=170)
    return _write(path, bytes(pdf.output()))


def write_garbage_pdf(path: Path, seed: int = 17) -> Path:
    """Text that extracts as random consonant strings, as with a broken font map."""
    rng = random.Random(seed)
    consonants = "bcdfghjklmnpqrstvwxz"
    words = ["".join(rng.choices(consonants, k=rng.randint(4, 9))) for _ in range(300)]
    pages = [" ".join(words[i : i + 100]) for i in range(0, 300, 100)]
    return _write(path, text_pdf_bytes(pages))


def write_shifted_pdf(path: Path) -> Path:
    """Real French shifted by one letter ("Mft bmmjbodft"), as with an offset glyph map:
    word-shaped tokens, but almost no common words."""

    def shift(text: str) -> str:
        return "".join(chr((ord(c) - 97 + 1) % 26 + 97) if "a" <= c <= "z" else c for c in text)

    return _write(path, text_pdf_bytes([shift(page) for page in REPORT_PAGES * 2]))


def write_damaged_page_pdf(path: Path, page: int = 2) -> Path:
    """The 4 report pages, page ``page`` (1-based) with a content stream that fails to inflate."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf_bytes(REPORT_PAGES))))
    contents = writer.pages[page - 1]["/Contents"].get_object()
    assert isinstance(contents, StreamObject)
    contents.set_data(b"")  # drop the cached decoded data, then plant undecodable bytes
    contents._data = b"x\x9c damaged \x00\x01 not zlib"
    contents[NameObject("/Filter")] = NameObject("/FlateDecode")
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(path, buffer.getvalue())


def write_mixed_pdf(path: Path) -> Path:
    """Two text pages around a picture-only page (page 2): loads with a warning."""
    text = text_pdf_bytes([REPORT_PAGES[0], REPORT_PAGES[2]])
    image = PdfReader(io.BytesIO(write_image_pdf(path, pages=1).read_bytes()))
    reader = PdfReader(io.BytesIO(text))
    writer = PdfWriter()
    writer.add_page(reader.pages[0])
    writer.add_page(image.pages[0])
    writer.add_page(reader.pages[1])
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(path, buffer.getvalue())


JS_SHELL_HTML = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Alliance App</title>
<script src="/static/app.3f9a.js"></script></head>
<body><div id="root"></div><noscript>Activez JavaScript.</noscript>
<script>window.__INITIAL_STATE__ = {"user": null}; bootstrap("#root");</script></body></html>"""

LATIN1_HTML = """<!DOCTYPE html><html lang="fr"><head>{meta}
<title>Récit d'alliance à Saint-Étienne</title></head>
<body><article><h1>Récit : l'été où tout a commencé</h1>
<p>À Saint-Étienne, l'association « Cœur de quartier » et une entreprise du bâtiment ont noué
un partenariat exemplaire. Ça a été très efficace, même au-delà des espérances.</p>
<p>Les élèves ont découvert des métiers ; les salariés ont retrouvé du sens à leur travail.</p>
</article></body></html>"""

BOILERPLATE_HTML = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>Faire alliance : le guide | Le RAMEAU</title></head><body>
<header><nav class="menu"><ul><li><a href="/">Accueil</a></li>
<li><a href="/publications">Nos publications</a></li><li><a href="/contact">Nous contacter</a></li>
</ul></nav></header>
<div id="cookie-banner" class="cookie-consent"><p>Ce site utilise des cookies pour mesurer
l'audience. En poursuivant votre navigation, vous acceptez les cookies.</p>
<button>Accepter les cookies</button><button>Refuser</button></div>
<main><article>
<h1>Faire alliance entre associations et entreprises</h1>
<p>Les alliances entre associations et entreprises se multiplient en France depuis dix ans.
Elles répondent à des besoins concrets des territoires et mobilisent des compétences
complémentaires.</p>
<h2>Les trois étapes clés</h2>
<p>Une démarche de partenariat réussie suit généralement trois étapes, de la rencontre à
l'évaluation des résultats obtenus ensemble.</p>
<ul><li>Identifier un besoin partagé sur le territoire</li>
<li>Co-construire un projet commun</li><li>Évaluer l'impact de l'alliance</li></ul>
<table><tr><th>Acteur</th><th>Apport</th></tr>
<tr><td>Association</td><td>Connaissance du terrain</td></tr>
<tr><td>Entreprise</td><td>Compétences et financement</td></tr></table>
<p>Le cœur d'une alliance, c'est la confiance réciproque entre les partenaires, qui se
construit dans la durée.</p>
</article></main>
<footer class="site-footer"><p>© 2024 Le RAMEAU — Mentions légales — Plan du site</p>
<p>Suivez-nous sur les réseaux sociaux</p></footer>
</body></html>"""

FRONT_MATTER_MD = """---
title: Titre du front matter
date: 2024-03-01
tags: [alliance, odd17]
---
# Charte du faire alliance

Préambule : cette **charte** engage les *signataires* à coopérer.

## Nos engagements

- Co-construire avec les [partenaires](https://example.org/partenaires)
- Évaluer ensemble l'impact

Texte final de la charte.
"""


def write_js_shell_html(path: Path) -> Path:
    """A single-page-app shell: scripts and an empty root, no readable text."""
    return _write(path, JS_SHELL_HTML.encode("utf-8"))


def write_latin1_html(path: Path, *, declare: bool = True) -> Path:
    """A French page in windows-1252 ("œ" is 0x9C), declaring ISO-8859-1 or nothing."""
    meta = '<meta charset="iso-8859-1">' if declare else ""
    return _write(path, LATIN1_HTML.format(meta=meta).encode("cp1252"))


def write_boilerplate_html(path: Path, *, semantic: bool = True) -> Path:
    """An article with a heading, list and table, wrapped in nav, cookie banner and footer;
    with ``semantic=False`` all of them are plain <div>s (no header/nav/main/footer tags)."""
    html = BOILERPLATE_HTML
    if not semantic:
        for old, new in (
            ("<header>", "<div class='top'>"),
            ("</header>", "</div>"),
            ('<nav class="menu">', "<div class='menu'>"),
            ("</nav>", "</div>"),
            ("<main><article>", "<div class='content'>"),
            ("</article></main>", "</div>"),
            ('<footer class="site-footer">', "<div class='bas'>"),
            ("</footer>", "</div>"),
            ('id="cookie-banner" class="cookie-consent"', "class='bandeau'"),
        ):
            html = html.replace(old, new)
    return _write(path, html.encode("utf-8"))


def write_front_matter_md(path: Path) -> Path:
    """Markdown with YAML front matter, a # title, emphasis, a link and a list."""
    return _write(path, FRONT_MATTER_MD.encode("utf-8"))


def write_empty_file(path: Path) -> Path:
    """A zero-byte file."""
    return _write(path, b"")


def write_sized_file(path: Path, size: int) -> Path:
    """A text file of exactly ``size`` bytes (for the size limit)."""
    line = b"Faire alliance entre associations et entreprises.\n"
    return _write(path, (line * (size // len(line) + 1))[:size])


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
