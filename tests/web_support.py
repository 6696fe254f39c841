"""Helpers for the web tests: a small corpus (Markdown, one real PDF, hostile documents) and a
real uvicorn server on a free 127.0.0.1 port, stopped at the end."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from conftest import write_corpus
from fastapi import FastAPI
from fpdf import FPDF

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

PDF_PAGES = [
    "Le diagnostic partagé du territoire est la première étape : on recense les besoins, les "
    "acteurs présents et les ressources disponibles avant de chercher des partenaires.",
    "Le Fonds ODD 17 soutient l'ingénierie des alliances : il finance le temps de coordination "
    "que les partenaires consacrent à construire ensemble leur projet d'intérêt général.",
    "La convention de partenariat précise les objectifs, la durée, les apports de chacun, la "
    "gouvernance du projet, la communication et les modalités de sortie.",
]
PDF_SOURCE = "boite-a-outils/guide-alliances.pdf"
PDF_QUESTION = "Qui finance le temps de coordination d'une alliance ?"

# Untrusted text: each payload would set window.xssFired (or open a dialog) if it ever ran.
XSS_TEXT = """Le mécénat de compétences <script>window.xssFired=1;alert(1)</script> permet aux \
salariés d'une entreprise de s'engager auprès d'une association du territoire.

Le mécénat de compétences se prépare avec l'association <img src=x onerror="window.xssFired=2;\
alert(2)"> en définissant les missions confiées aux salariés volontaires.

Pour le mécénat de compétences, lisez [le guide](javascript:window.xssFired=3) et \
<a href="javascript:window.xssFired=4">la fiche pratique</a> avant de signer la convention.

Le mécénat de compétences ${window.xssFired=5} {{constructor.constructor('window.xssFired=6')()}} \
valorise l'engagement des salariés et renforce le lien entre l'entreprise et l'association.
"""
XSS_SOURCE = "boite-a-outils/mecenat-competences.txt"
XSS_TITLE_DOC = """# Mécénat <img src=x onerror="window.xssFired=7"> \
<script>window.xssFired=8</script>

Le mécénat de compétences mobilise des salariés volontaires au service d'une association.
"""
XSS_QUESTION = "Comment fonctionne le mécénat de compétences des salariés avec une association ?"


def make_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.add_font("DejaVu", fname=FONT)
    pdf.set_font("DejaVu", size=11)
    pdf.set_auto_page_break(False)
    for i, text in enumerate(pages, 1):
        pdf.add_page()
        pdf.cell(0, 8, "Guide des alliances — exemple", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, text)
        pdf.set_y(-20)
        pdf.cell(0, 8, f"page {i} / {len(pages)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def make_web_corpus(root: Path) -> Path:
    """The shared small corpus plus a 3-page PDF and two hostile documents."""
    corpus = write_corpus(root)
    make_pdf(corpus / PDF_SOURCE, PDF_PAGES)
    (corpus / XSS_SOURCE).write_text(XSS_TEXT, encoding="utf-8")
    (corpus / "boite-a-outils" / "mecenat-titre.md").write_text(XSS_TITLE_DOC, encoding="utf-8")
    return corpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(app: FastAPI, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL, stops it afterwards."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"server did not start on {base} within {timeout_s} s")
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
