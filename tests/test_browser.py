"""The real server in Debian's chromium (Playwright): ask, read the cited passage, open the PDF,
hostile documents run nothing, every request stays on the server's origin. Screenshots of the
main states go to artifacts/screenshots/ (kept by CI)."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import serve_page
from langchain_core.embeddings import Embeddings
from playwright.sync_api import Browser, Dialog, Page, sync_playwright
from web_support import (
    PDF_QUESTION,
    PDF_SOURCE,
    XSS_QUESTION,
    make_web_corpus,
    running_server,
)

from assistant import Assistant, Settings
from assistant.feedback import FeedbackStore
from ui.api import IndexState
from ui.server import create_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*"),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
WAIT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)


@dataclass
class Site:
    base: str
    settings: Settings
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, e5: Embeddings) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    (root / "secret.txt").write_text("TOPSECRET", encoding="utf-8")
    settings = Settings(corpus_dir=make_web_corpus(root / "corpus"), index_dir=root / "index")
    assistant = Assistant(settings, embedder=e5)
    assert not assistant.refresh().failed
    with running_server(create_app(settings, assistant)) as base:
        yield Site(base, settings)


# Records every distinct text of the latest answer bubble while it streams in.
STEP_RECORDER = """
window.answerSteps = [];
new MutationObserver(() => {
  const bots = document.querySelectorAll('#chat .message.bot');
  if (!bots.length) return;
  const text = bots[bots.length - 1].innerText;
  if (window.answerSteps[window.answerSteps.length - 1] !== text) window.answerSteps.push(text);
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


def open_page(browser: Browser, site: Site, **context: Any) -> Page:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.on("request", lambda r: site.requests.append(r.url))

    def on_dialog(dialog: Dialog) -> None:
        site.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script("window.xssFired = null;")
    page.goto(site.base + "/")
    page.wait_for_selector("#question textarea", timeout=WAIT_MS)
    return page


def ask(page: Page, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#send")
    page.wait_for_selector("#citations input[type=radio]", timeout=WAIT_MS)


def last_answer(page: Page) -> str:
    bots = page.locator("#chat .message.bot")
    return str(bots.last.inner_text())


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def assert_same_origin(site: Site) -> None:
    origin = urlsplit(site.base)
    foreign = [
        u
        for u in site.requests
        if not u.startswith(("data:", "blob:"))
        and (urlsplit(u).scheme, urlsplit(u).netloc) != (origin.scheme, origin.netloc)
    ]
    assert site.requests and not foreign, foreign


def test_ask_cite_open_passage_and_pdf(browser: Browser, site: Site) -> None:
    page = open_page(browser, site)
    shot(page, "01-accueil")
    assert "Exemples de questions" in page.inner_text("body")
    ask(page, PDF_QUESTION)
    answer = last_answer(page)
    assert "[1]" in answer and "Sources" in answer and re.search(r"p\.\s2", answer)
    assert "Fonds ODD 17" in answer
    shot(page, "02-reponse-citee")

    page.locator("#citations label").first.click()
    mark = page.wait_for_selector("#passage mark", timeout=WAIT_MS)
    assert mark is not None and "temps de coordination" in mark.inner_text()
    link = page.locator("#passage a.passage-link")
    href = link.get_attribute("href")
    assert href == f"/sources/{PDF_SOURCE}#page=2"
    shot(page, "03-passage-surligne")

    assert href is not None
    resp = page.request.get(site.base + href.split("#")[0])
    assert resp.status == 200 and resp.headers["content-type"] == "application/pdf"
    assert resp.body().startswith(b"%PDF")
    assert_same_origin(site)
    page.context.close()


def test_follow_up_feedback_and_new_conversation(browser: Browser, site: Site) -> None:
    page = open_page(browser, site)
    page.evaluate(STEP_RECORDER)
    ask(page, "Qu'est-ce que le Pacte civique ?")
    first = last_answer(page)
    # streamed: the answer grew sentence by sentence, each partial text ending with its marker
    markers = len(re.findall(r"\[\d+\]", first.split("Sources")[0]))
    steps = page.evaluate("window.answerSteps")
    partial = [t for t in steps if re.search(r"\[\d+\]$", t.strip()) and "Sources" not in t]
    assert len(partial) == markers - 1 >= 1, steps  # then the full answer with its sources
    assert all(a in b for a, b in pairwise(partial))
    page.fill("#question textarea", "Sur quelles valeurs repose-t-il ?")
    page.click("#send")
    page.wait_for_function(
        "document.querySelectorAll('#chat .message.bot').length >= 2", timeout=WAIT_MS
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#chat .message.bot')].pop().innerText.includes('Sources')",
        timeout=WAIT_MS,
    )
    follow_up = last_answer(page)
    assert "Pacte civique" in first and "Pacte civique" in follow_up
    assert re.search(r"créativité|sobriété|valeurs", follow_up)

    page.fill("#comment textarea", "Réponse claire, merci")
    page.click("#useful")
    page.wait_for_selector("#feedback-status:has-text('Merci')", timeout=WAIT_MS)
    row = FeedbackStore(site.settings.index_dir / "feedback.sqlite").recent(1)[0]
    assert row.question == "Sur quelles valeurs repose-t-il ?" and row.useful
    assert row.comment == "Réponse claire, merci" and row.citations
    shot(page, "04-relance-et-avis")

    page.click("#reset")
    page.wait_for_function(
        "document.querySelectorAll('#chat .message').length === 0", timeout=WAIT_MS
    )
    assert_same_origin(site)
    page.context.close()


def test_nothing_found_is_said_plainly(browser: Browser, site: Site) -> None:
    page = open_page(browser, site)
    page.fill(
        "#question textarea", "Quelle est la recette du gâteau au chocolat de ma grand-mère ?"
    )
    page.click("#send")
    page.wait_for_function(
        "[...document.querySelectorAll('#chat .message.bot')].some("
        "m => m.innerText.includes(\"Je n'ai pas trouvé\") || m.innerText.includes('Aucun'))",
        timeout=WAIT_MS,
    )
    shot(page, "05-rien-trouve")
    page.context.close()


def test_hostile_documents_run_nothing(browser: Browser, site: Site) -> None:
    page = open_page(browser, site)
    ask(page, XSS_QUESTION)
    answer = last_answer(page)
    assert "<script>" in answer or "onerror" in answer  # shown as text
    labels = page.locator("#citations label")
    passages = []
    for i in range(labels.count()):
        labels.nth(i).click()
        page.wait_for_selector(f"#passage .passage-meta:has-text('[{i + 1}]')", timeout=WAIT_MS)
        passages.append(page.inner_text("#passage"))
    shown = "\n".join(passages)
    assert "<script>" in shown and "onerror" in shown and "javascript:" in shown
    shot(page, "06-document-hostile")
    # nothing from the documents became live markup
    assert page.evaluate("window.xssFired") is None
    assert not site.dialogs
    for selector in ("#chat script", "#passage script", "#chat img[onerror]", "#passage img"):
        assert page.locator(selector).count() == 0, selector
    assert page.locator("a[href^='javascript:' i]").count() == 0
    # the hostile files themselves are served inert
    for source in ("boite-a-outils/mecenat-competences.txt", "boite-a-outils/mecenat-titre.md"):
        page.goto(f"{site.base}/sources/{source}")
        page.wait_for_timeout(300)
        assert page.evaluate("window.xssFired") is None
    assert not site.dialogs
    assert_same_origin(site)
    page.context.close()


def test_phone_sized_screen(browser: Browser, site: Site) -> None:
    page = open_page(browser, site, viewport={"width": 390, "height": 844}, is_mobile=True)
    ask(page, PDF_QUESTION)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"horizontal scrolling on a phone ({width}px)"
    assert page.locator("#send").is_visible()
    shot(page, "07-telephone")
    page.context.close()


# Every rendered character « ? », « ; » or « : » that starts a line (the previous visible
# character of its text sits on the line above): French typography puts a non-breaking space
# before them, so none should.
LINE_START_SIGNS = r"""
() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const t = node.textContent;
    if (!/[?;:]/.test(t)) continue;
    const el = node.parentElement;
    if (!el || el.closest('script, style, textarea, input')) continue;
    for (let i = 1; i < t.length; i++) {
      if (!'?;:'.includes(t[i])) continue;
      let j = i - 1;
      while (j >= 0 && (t[j] === ' ' || t[j] === '\n' || t[j] === '\t')) j--;
      if (j < 0) continue;
      const at = (k) => { const r = document.createRange(); r.setStart(node, k);
        r.setEnd(node, k + 1); return r.getClientRects(); };
      const me = at(i), before = at(j);
      if (!me.length || !before.length || me[0].height === 0) continue;
      if (me[0].top >= before[before.length - 1].bottom - 2) {
        bad.push(t.slice(Math.max(0, i - 25), i + 10));
      }
    }
  }
  return bad;
}
"""

LONG_STEPS = [
    "Réunir les partenaires autour d'un diagnostic du quartier et de ses besoins",
    "Nommer un binôme de pilotage, l'un côté association, l'autre côté entreprise",
    "Écrire ensemble la raison d'être du projet et ce que chacun en attend",
    "Choisir trois indicateurs de réussite partagés avant le lancement",
    "Rédiger la convention avec la durée, les apports et la sortie",
    "Prévoir le budget de coordination et qui le finance",
    "Lancer une première action courte et visible pour les habitants",
    "Tenir un comité de suivi chaque trimestre avec un compte rendu",
    "Associer les salariés volontaires et les bénévoles aux décisions",
    "Communiquer sur les résultats auprès des élus et des financeurs",
    "Faire le bilan annuel avec les indicateurs choisis au départ",
    "Décider ensemble de renouveler, d'élargir ou de clore le partenariat",
]
LONG_QUESTION = "Quelles sont les douze étapes d'un partenariat de quartier réussi ?"


@pytest.fixture(scope="module")
def long_site(tmp_path_factory: pytest.TempPathFactory, e5: Embeddings) -> Iterator[Site]:
    """A corpus whose answer is long (a twelve-step list, written unlike the shipped guides:
    a numbered Markdown list with bold steps), so the chat must scroll to show its start."""
    root = tmp_path_factory.mktemp("long")
    corpus = make_web_corpus(root / "corpus")
    steps = "\n".join(f"{i}. **Étape {i}** : {text}." for i, text in enumerate(LONG_STEPS, 1))
    (corpus / "boite-a-outils" / "douze-etapes.md").write_text(
        "# Les douze étapes d'un partenariat de quartier réussi\n\n"
        "Voici les douze étapes d'un partenariat de quartier réussi, dans l'ordre :\n\n"
        f"{steps}\n",
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    assistant = Assistant(settings, embedder=e5)
    assert not assistant.refresh().failed
    with running_server(create_app(settings, assistant)) as base:
        yield Site(base, settings)


def answer_start_is_visible(page: Page) -> bool:
    """Whether the first line of the last answer is on screen, in the chat's visible part,
    and the topmost thing there (not hidden under a label)."""
    return bool(
        page.evaluate(
            """() => {
  const bots = document.querySelectorAll('#chat .message.bot');
  const last = bots[bots.length - 1];
  const box = document.querySelector('#chat');
  if (!last || !box) return false;
  const r = last.getBoundingClientRect(), b = box.getBoundingClientRect();
  const y = r.top + 12, x = r.left + Math.min(40, r.width / 2);
  if (y < b.top || y > b.bottom || y < 0 || y > window.innerHeight) return false;
  const hit = document.elementFromPoint(x, y);
  return !!hit && last.contains(hit);
}"""
        )
    )


def test_a_chip_opens_its_passage_and_the_answer_starts_on_screen(
    browser: Browser, long_site: Site
) -> None:
    page = open_page(browser, long_site, viewport={"width": 1280, "height": 900})
    assert page.evaluate("document.documentElement.lang") == "fr"
    ask(page, PDF_QUESTION)  # a first exchange, so the long answer comes below it
    ask_again(page, LONG_QUESTION)
    answer = last_answer(page)
    assert "Étape 12" in answer or "clore le partenariat" in answer, answer
    assert "**" not in answer  # Markdown emphasis from the document is not shown raw
    assert answer_start_is_visible(page), "the answer's first line is off screen or covered"
    shot(page, "13-reponse-bureau")

    chips = page.locator("#chat .message.bot >> nth=-1").locator("a[href^='#source-']")
    assert chips.count() >= 2
    chips.first.click()
    page.wait_for_selector("#passage .passage-meta:has-text('[1]')", timeout=WAIT_MS)
    passage = page.inner_text("#passage")
    assert "douze étapes" in passage.lower() and "**" not in passage
    assert page.locator("#citations input[value='1']").is_checked()
    assert "douze-etapes.md" not in passage  # title shown, not the file path
    assert page.evaluate(LINE_START_SIGNS) == []
    shot(page, "14-passage-ouvert")

    # a chip of the earlier answer opens that answer's passage (the PDF, at its page)
    page.locator("#chat .message.bot >> nth=0").locator("a[href^='#source-']").first.click()
    page.wait_for_selector("#passage a.passage-link[href*='#page=2']", timeout=WAIT_MS)
    assert "temps de coordination" in page.inner_text("#passage mark")
    assert "common." not in page.inner_text("body")
    live = page.evaluate(
        "[...document.querySelectorAll('[aria-live]')].map(e => e.textContent).join(' ')"
    )
    assert "common." not in live
    assert_same_origin(long_site)
    page.context.close()


def test_at_phone_width_the_sources_sit_under_the_answer(browser: Browser, long_site: Site) -> None:
    page = open_page(browser, long_site, viewport={"width": 390, "height": 844}, is_mobile=True)
    assert page.locator("#feedback").count() == 0 or not page.locator("#feedback").is_visible()
    ask_again(page, LONG_QUESTION)
    page.evaluate("window.__probe = " + PROBE)
    assert answer_start_is_visible(page), page.evaluate("window.__probe()")
    gap = page.evaluate(
        """() => {
  const chat = document.querySelector('#chat').getBoundingClientRect();
  const first = document.querySelector('#citations label').getBoundingClientRect();
  return first.top - chat.bottom;
}"""
    )
    assert 0 <= gap <= 844, f"first source {gap}px below the answer's end"
    assert page.locator("#feedback").is_visible()  # there is an answer to judge now
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"horizontal scrolling on a phone ({width}px)"
    page.locator("#chat a[href^='#source-']").first.click()
    page.wait_for_selector("#passage .passage-meta:has-text('[1]')", timeout=WAIT_MS)
    assert page.evaluate(LINE_START_SIGNS) == []
    shot(page, "15-telephone-390")
    page.context.close()


def test_the_page_is_french_before_any_question(browser: Browser, site: Site) -> None:
    page = open_page(browser, site, viewport={"width": 390, "height": 844}, is_mobile=True)
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert not page.locator("#feedback").is_visible()  # nothing to judge yet
    body = page.inner_text("body")
    for example in ("association et une entreprise", "modes de partenariat"):
        assert example in body  # example questions shown whole, not cut
    assert "..." not in body.split("Exemples de questions")[-1][:400]
    assert page.evaluate(LINE_START_SIGNS) == []
    page.context.close()


PROBE = """() => {
  const last = [...document.querySelectorAll('#chat .message.bot')].pop();
  const r = last.getBoundingClientRect();
  const b = document.querySelector('#chat').getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + 20, r.top + 12);
  return {msg: [r.top, r.bottom], chat: [b.top, b.bottom], vh: window.innerHeight,
          hit: hit && hit.outerHTML.slice(0, 120), sy: window.scrollY};
}"""


def ask_again(page: Page, question: str) -> None:
    before = page.locator("#chat .message.bot").count()
    page.fill("#question textarea", question)
    page.click("#send")
    page.wait_for_function(
        f"document.querySelectorAll('#chat .message.bot').length > {before}", timeout=WAIT_MS
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#chat .message.bot')].pop().innerText.includes('Sources')",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(500)  # the scroll to the answer's start runs after the last update


def test_raw_traversal_requests_get_404(site: Site) -> None:
    """Paths a browser or httpx would normalise, sent as is."""
    netloc = urlsplit(site.base).netloc
    for path in (
        "/sources/../secret.txt",
        "/sources/charte/../../secret.txt",
        "/sources/%2e%2e/secret.txt",
        "/sources/%252e%252e%252fsecret.txt",
        "/sources/charte/../charte/pacte.md",
    ):
        conn = http.client.HTTPConnection(netloc, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 404 and b"TOPSECRET" not in body, path


def test_empty_then_building_index_notices(
    browser: Browser, tmp_path: Path, e5: Embeddings
) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    state = IndexState()
    app = create_app(settings, Assistant(settings, embedder=e5), state=state)
    with running_server(app) as base:
        site = Site(base, settings)
        page = open_page(browser, site)
        page.wait_for_selector("#notice:has-text('index est vide')", timeout=WAIT_MS)
        shot(page, "08-index-vide")
        state.start()
        state.progress(3, 10)
        page.reload()
        page.wait_for_selector("#notice:has-text('en cours de construction')", timeout=WAIT_MS)
        page.fill("#question textarea", "Comment faire alliance ?")
        page.click("#send")
        page.wait_for_selector("#chat .message.bot:has-text('construction')", timeout=WAIT_MS)
        shot(page, "09-index-en-construction")
        state.finish()
        # the page polls while building and drops the notice once the build is over
        page.wait_for_selector("#notice:has-text('index est vide')", timeout=WAIT_MS)
        assert_same_origin(site)
        page.context.close()


def test_openapi_docs_load_from_the_server_only(browser: Browser, site: Site) -> None:
    pytest.importorskip("fastapi_offline")
    local = Site(site.base, site.settings)
    ctx = browser.new_context()
    page = ctx.new_page()
    page.on("request", lambda r: local.requests.append(r.url))
    page.goto(site.base + "/docs")
    page.wait_for_selector("[data-path='/api/search']", timeout=WAIT_MS)
    assert page.locator("[data-path='/api/ask']").count() >= 1
    shot(page, "10-api-docs")
    assert_same_origin(local)
    ctx.close()


def test_a_cited_web_page_opens_on_its_site_or_as_the_indexed_copy(
    browser: Browser, tmp_path: Path, e5: Embeddings
) -> None:
    from fixtures_docs import BOILERPLATE_HTML

    page_html = BOILERPLATE_HTML.replace(
        "</body>", "<script>window.xssFired = 'archive';</script></body>"
    ).encode()
    corpus = tmp_path / "corpus"
    (corpus / "charte").mkdir(parents=True)
    (corpus / "charte" / "pacte.md").write_text(
        "# Le Pacte civique\n\nLe Pacte civique repose sur des valeurs partagées.\n", "utf-8"
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    assistant = Assistant(settings, embedder=e5)
    with serve_page(page_html) as web:
        url = f"{web}/guide-alliances"
        (corpus / "sources.toml").write_text(
            f'[[web]]\nurl = "{url}"\nkind = "boite-a-outils"\n', encoding="utf-8"
        )
        assert not assistant.refresh().failed
    # the site is offline now: the indexed copy still opens
    with running_server(create_app(settings, assistant)) as base:
        site = Site(base, settings)
        page = open_page(browser, site)
        ask(page, "Quelles sont les trois étapes clés d'une démarche de partenariat ?")
        page.locator("#citations label").first.click()
        page.wait_for_selector("#passage a.passage-archive", timeout=WAIT_MS)
        assert page.locator("#passage a.passage-link").get_attribute("href") == url
        assert "Ouvrir la page" in page.inner_text("#passage")
        archive = page.locator("#passage a.passage-archive").get_attribute("href")
        assert archive is not None and archive.startswith("/archive/")
        shot(page, "11-page-web-citee")
        page.goto(base + archive)
        page.wait_for_selector("text=Les trois étapes clés", timeout=WAIT_MS)
        assert page.evaluate("window.xssFired") is None  # sandboxed: its script never ran
        shot(page, "12-copie-indexee")
        assert_same_origin(site)
        page.context.close()
