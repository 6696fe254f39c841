"""HTML page to its main text with trafilatura (no navigation, cookie banner or footer).

``read_html(data, source)`` returns ``(title, text)``; ``read_html_blocks`` also returns the
page's blocks (headings, paragraphs, nested lists, tables) read from trafilatura's XML output.
We decode the bytes ourselves: trafilatura's guess reads undeclared Latin-1 French as Central
European and drops cp1252-only characters such as "œ" even when the page declares ISO-8859-1.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import replace
from xml.etree import ElementTree

import trafilatura

from assistant.errors import DocumentError
from assistant.ingest.loaders.structure import Block, BlockBuilder, join_items, render_blocks
from assistant.text.cleaning import clean_text, letter_count, strip_markdown

logger = logging.getLogger(__name__)

MIN_MAIN_LETTERS = 40  # less than this is a shell (JavaScript app, redirect, error page)

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# As browsers do (WHATWG): these labels mean windows-1252.
_AS_CP1252 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "iso_8859-1", "us-ascii", "ascii"}


def decode_html(data: bytes) -> str:
    """Bytes to text: BOM, then declared charset, then UTF-8, then windows-1252."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    head = data[:4096]
    declared = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if declared:
        label = declared.group(1).decode("ascii", errors="ignore").lower()
        label = "cp1252" if label in _AS_CP1252 else label
        try:
            codecs.lookup(label)
        except LookupError:
            logger.debug("unknown charset %r, guessing", label)
        else:
            if label.replace("-", "").replace("_", "") != "utf8":
                return data.decode(label, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_html(data: bytes, source: str) -> tuple[str | None, str]:
    """Main text of a page (headings, paragraphs, lists, tables; paragraphs split by blank
    lines) and its title. Raises ``DocumentError`` when there is no main text."""
    title, text, _ = read_html_blocks(data, source)
    return title, text


def read_html_blocks(data: bytes, source: str) -> tuple[str | None, str, list[Block]]:
    """Title, main text and blocks of a page; the text is the blocks rendered, or trafilatura's
    flat text when its XML cannot be read."""
    html = decode_html(data)
    blocks = _xml_blocks(html)
    if blocks:
        text = clean_text(render_blocks(blocks))
        if letter_count(text) < MIN_MAIN_LETTERS:
            raise DocumentError(
                source, "pas de texte principal (page vide ou générée en JavaScript)"
            )
        return _title(html), text, blocks
    return (*_flat(html, source), [])


def _extract(html: str, output_format: str) -> str | None:
    """trafilatura's main text, with the same options for both readings of a page (its
    structure as XML, its flat text as Markdown)."""
    return trafilatura.extract(
        html,
        output_format=output_format,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )


def _xml_blocks(html: str) -> list[Block]:
    xml = _extract(html, "xml")
    if not xml:
        return []
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        logger.debug("unreadable trafilatura XML, using flat text")
        return []
    main = root.find("main")
    builder = BlockBuilder()
    for element in main if main is not None else root:
        _element_blocks(element, builder)
    return [_cleaned(b) for b in builder.blocks]


def _cleaned(block: Block) -> Block:
    return replace(
        block,
        text=clean_text(block.text),
        lead_in=clean_text(block.lead_in),
        items=tuple(clean_text(i) for i in block.items),
        path=tuple(clean_text(p) for p in block.path),
    )


def _text(element: ElementTree.Element, skip: str = "") -> str:
    """All text of an element, nested ``skip`` elements left out."""
    parts = [element.text or ""]
    for child in element:
        if child.tag != skip:
            parts.append(_text(child, skip))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _items(element: ElementTree.Element) -> list[str]:
    """Items of a list; a nested list joins its parent item (« Parent : a ; b »)."""
    out: list[str] = []
    for item in element.findall("item"):
        text = _text(item, skip="list")
        subs = [s for sub in item.findall("list") for s in _items(sub)]
        if subs:
            subs = [re.sub(r"^(?:[-•]|\d+\.)\s+", "", s) for s in subs]
            sep = " " if text.endswith(":") else " : "
            text = f"{text}{sep}{join_items(subs)}" if text else join_items(subs)
        out.append(text)
    return out


def _element_blocks(element: ElementTree.Element, builder: BlockBuilder) -> None:
    tag = element.tag
    if tag == "head":
        rend = element.get("rend", "h2")
        level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
        builder.heading(_text(element), level)
    elif tag == "list":
        builder.list(_items(element), ordered=element.get("rend") == "ol")
    elif tag == "table":
        rows = [[_text(cell) for cell in row.findall("cell")] for row in element.iter("row")]
        builder.table(rows)
    elif tag in {"p", "quote", "code"}:
        builder.paragraph(_text(element))
    else:  # div and others: read their children, or their text
        children = list(element)
        if children:
            if (element.text or "").strip():
                builder.paragraph(element.text or "")
            for child in children:
                _element_blocks(child, builder)
        elif _text(element):
            builder.paragraph(_text(element))


def _flat(html: str, source: str) -> tuple[str | None, str]:
    extracted = _extract(html, "markdown")
    text = clean_text(strip_markdown(extracted or ""))
    if letter_count(text) < MIN_MAIN_LETTERS:
        raise DocumentError(source, "pas de texte principal (page vide ou générée en JavaScript)")
    return _title(html), text


def _title(html: str) -> str | None:
    # extensive=False: the title is the same, and the extensive date search loads dateparser
    # (1.5 s at the first page of a refresh, most of the HTML loading time)
    metadata = trafilatura.extract_metadata(html, extensive=False)
    title = metadata.title if metadata is not None else None
    if not title:
        match = _TITLE.search(html)
        title = match.group(1) if match else None
    title = " ".join(clean_text(title).split()) if title else ""
    return title or None
