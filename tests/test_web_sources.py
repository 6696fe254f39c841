"""``sources.toml``: metadata overrides and web pages, fetched from a local http.server on
127.0.0.1 (a thread, shut down after each test): conditional requests, limits, offline copies."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import write_corpus
from fixtures_docs import BOILERPLATE_HTML, REPORT_PAGES, text_pdf_bytes
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import ConfigError
from assistant.ingest.manifest import load_manifest
from assistant.ingest.web_fetch import WebCache, cache_key, fetch_page
from assistant.types import DocumentReport, RefreshReport


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str = ""
    location: str = ""
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Site:
    """What the local server answers, and what it was asked."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, If-None-Match)
    base: str = ""


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("If-None-Match", "")))
            route = site.routes.get(self.path, Route(status=404, body=b"absent"))
            if route.delay:
                time.sleep(route.delay)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.send_header("ETag", route.etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.location:
                self.send_header("Location", route.location)
            if route.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(route.body), 4096):
                    piece = route.body[start : start + 4096]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hang up on purpose here (size limit, timeout): no traceback."""


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site()
    server = QuietServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


GUIDE = BOILERPLATE_HTML.encode()
GUIDE_V2 = BOILERPLATE_HTML.replace(
    "Connaissance du terrain", "Connaissance fine du terrain"
).encode()


def _by_source(report: RefreshReport) -> dict[str, DocumentReport]:
    return {d.source: d for d in report.documents}


def _write_manifest(corpus: Path, site: Site, title: str = "Histoire du RAMEAU") -> None:
    (corpus / "sources.toml").write_text(
        f"""
[files."recits/histoire.md"]
title = "{title}"
kind = "charte"
date = 2021-05-01

[[web]]
url = "{site.base}/guide"
kind = "boite-a-outils"

[[web]]
url = "{site.base}/rapport.pdf"
kind = "recit"
title = "Rapport en ligne"

[[web]]
url = "{site.base}/absente"

[[web]]
url = "{site.base}/image"

[[web]]
url = "{site.base}/boucle"

[[web]]
url = "{site.base}/enorme"
""",
        encoding="utf-8",
    )


def test_manifest_and_web_pages_through_refreshes(
    tmp_path: Path, site: Site, hash_embeddings: Embeddings
) -> None:
    site.routes = {
        "/guide": Route(GUIDE, etag='"v1"'),
        "/rapport.pdf": Route(text_pdf_bytes(REPORT_PAGES), "application/pdf"),
        "/image": Route(b"\x89PNG....", "image/png"),
        "/boucle": Route(status=302, location="/boucle"),
        "/enorme": Route(b"<p>" + b"alliance " * 20_000 + b"</p>", chunked=True),
    }
    corpus = write_corpus(tmp_path / "corpus")
    _write_manifest(corpus, site)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", max_file_mb=0.1)
    a = Assistant(settings, embedder=hash_embeddings)
    guide, pdf = f"{site.base}/guide", f"{site.base}/rapport.pdf"

    docs = _by_source(a.refresh())
    assert docs[guide].status == "added" and docs[pdf].status == "added"
    for name, reason in (
        ("absente", "page injoignable (HTTP 404)"),
        ("image", "page injoignable (type de contenu non pris en charge (image/png))"),
        ("boucle", "page injoignable (plus de 5 redirections)"),
        ("enorme", "page injoignable (page trop volumineuse (> 104857 o))"),
    ):
        assert docs[f"{site.base}/{name}"].status == "failed"
        assert docs[f"{site.base}/{name}"].reason == reason
    assert "sources.toml" not in docs  # the manifest is not a document
    listed = {d.source: vars(d) for d in a.documents()}
    assert listed[f"{site.base}/absente"]["status"] == "failed"
    assert listed[f"{site.base}/absente"]["reason"] == "page injoignable (HTTP 404)"
    assert not a.is_stale()  # unreachable pages are catalogued: serve need not refresh again
    chunks = a.store.all_chunks()
    histoire = [c.metadata for c in chunks if c.metadata["source"] == "recits/histoire.md"]
    assert {(m["title"], m["kind"], m["date"]) for m in histoire} == {
        ("Histoire du RAMEAU", "charte", "2021-05-01")
    }
    web = [c.metadata for c in chunks if c.metadata["source"] == pdf]
    assert {(m["title"], m["kind"]) for m in web} == {("Rapport en ligne", "recit")}
    assert {m["page"] for m in web} == {1, 2, 3, 4}
    hits = a.search("Connaissance du terrain, compétences et financement", k=3)
    assert any(h.source == guide and h.kind == "boite-a-outils" for h in hits)

    # Unchanged page: a conditional request answered 304, nothing downloaded or embedded.
    site.requests.clear()
    again = a.refresh()
    assert _by_source(again)[guide].status == "unchanged" and again.chunks_embedded == 0
    assert ("/guide", '"v1"') in site.requests

    # The page goes offline: its last copy stays answerable and is reported unreachable.
    site.routes["/guide"] = Route(status=503, body=b"maintenance")
    offline = _by_source(a.refresh())[guide]
    assert offline.status == "unchanged" and offline.chunks_kept > 0
    assert offline.reason.startswith("page injoignable (HTTP 503) : copie du ")
    hits = a.search("Connaissance du terrain, compétences et financement", k=3)
    assert any(h.source == guide for h in hits)

    # Back online with a change: only what changed is embedded.
    site.routes["/guide"] = Route(GUIDE_V2, etag='"v2"')
    changed = _by_source(a.refresh())[guide]
    assert changed.status == "updated" and changed.chunks_added == changed.chunks_removed == 1

    # Changing the manifest re-indexes the file; dropping a page removes it and its copy.
    _write_manifest(corpus, site, title="Histoire du laboratoire")
    text = (corpus / "sources.toml").read_text(encoding="utf-8")
    (corpus / "sources.toml").write_text(
        text.replace(f'url = "{pdf}"', 'url = "http://127.0.0.1:9/x"')
    )
    docs = _by_source(a.refresh())
    assert docs["recits/histoire.md"].status == "updated"
    assert docs[pdf].status == "removed"
    assert WebCache(tmp_path / "index" / "web").copy(pdf) is None
    assert not list((tmp_path / "index" / "web").glob(f"{cache_key(pdf)}*"))
    assert a.store.count() == sum(d.chunks for d in a.store.documents().values())


def test_a_broken_manifest_stops_the_refresh_before_any_change(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    a = Assistant(
        Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=hash_embeddings
    )
    a.refresh()
    count = a.store.count()
    for text, message in (
        ('[files."charte/pacte.md"]\nkind = "magazine"\n', "kind 'magazine' inconnu"),
        ('[[web]]\nurl = "file:///etc/passwd"\n', "url doit être http(s)"),
        ("[files\n", "sources.toml illisible"),
        ('[files."a.md"]\nauteur = "x"\n', "clé inconnue ['auteur']"),
    ):
        (corpus / "sources.toml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(message)):
            a.refresh()
        assert a.store.count() == count
    (corpus / "sources.toml").unlink()
    assert load_manifest(corpus).web == []
    assert a.refresh().chunks_embedded == 0


def test_fetch_limits_timeout_and_redirects(tmp_path: Path, site: Site) -> None:
    site.routes = {
        "/lente": Route(GUIDE, delay=1.0),
        "/ancienne": Route(status=301, location="/nouvelle"),
        "/nouvelle": Route(GUIDE, content_type="application/xhtml+xml"),
        "/grosse": Route(b"x" * 5000),
    }
    cache = WebCache(tmp_path / "web")
    with httpx.Client(timeout=0.3, follow_redirects=True, max_redirects=5) as client:
        slow = fetch_page(client, cache, f"{site.base}/lente", max_bytes=10**6)
        assert slow.path is None and slow.reason == "page injoignable (délai dépassé)"
        moved = fetch_page(client, cache, f"{site.base}/ancienne", max_bytes=10**6)
        assert moved.outcome == "downloaded" and moved.path is not None
        assert moved.path.suffix == ".html" and moved.path.read_bytes() == GUIDE
        big = fetch_page(client, cache, f"{site.base}/grosse", max_bytes=1000)
        assert big.reason == "page injoignable (page trop volumineuse (5000 o > 1000 o))"


def test_a_cited_web_page_links_to_the_site_and_to_the_copy_it_was_indexed_from(
    tmp_path: Path, site: Site, hash_embeddings: Embeddings
) -> None:
    from fastapi.testclient import TestClient

    from ui.render import passage_html
    from ui.server import create_app

    hostile = GUIDE.replace(b"</body>", b"<script>alert(1)</script></body>")
    site.routes = {"/guide": Route(hostile, etag='"v1"')}
    corpus = write_corpus(tmp_path / "corpus")
    guide = f"{site.base}/guide"
    (corpus / "sources.toml").write_text(
        f'[files."recits/histoire.md"]\ntitle = "Histoire"\n\n[[web]]\nurl = "{guide}"\n',
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    a = Assistant(settings, embedder=hash_embeddings)
    assert a.is_stale()
    a.refresh()
    # Overrides and web pages no longer make a fresh index look stale (serve would refresh).
    assert not a.is_stale()

    with TestClient(create_app(settings, a), raise_server_exceptions=False) as client:
        hits = client.post("/api/search", json={"query": "Connaissance du terrain", "k": 5})
        web = next(h for h in hits.json()["hits"] if h["source"] == guide)
        assert web["url"] == guide
        assert web["archive_url"] == f"/archive/{cache_key(guide)}"
        card = passage_html(
            1, next(h for h in a.search("Connaissance du terrain") if h.source == guide), []
        )
        assert f'href="{guide}"' in card and f'href="{web["archive_url"]}"' in card

        site.routes["/guide"] = Route(status=503, body=b"maintenance")
        a.refresh()  # offline now: the copy stays indexed, and served
        copy = client.get(web["archive_url"])
        assert copy.status_code == 200 and b"Connaissance du terrain" in copy.content
        assert copy.headers["content-security-policy"].startswith("sandbox")
        assert copy.headers["content-type"].startswith("text/html")

        listed = {d["source"]: d for d in client.get("/api/documents").json()["documents"]}
        assert listed[guide]["archive_url"] == web["archive_url"]
        assert listed["recits/histoire.md"]["archive_url"] is None
        for bad in (cache_key("http://127.0.0.1:9/never"), "../../etc/passwd", "0" * 24, "x"):
            assert client.get(f"/archive/{bad}").status_code == 404

        (corpus / "sources.toml").write_text("", encoding="utf-8")
        assert a.is_stale()  # a listed page is gone
        a.refresh()
        assert client.get(web["archive_url"]).status_code == 404
