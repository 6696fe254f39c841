"""How a line of text shows its structure: a list item, a numbered step, a table row.

One definition for every stage, because they read the same lines: the loaders write a list
item into a chunk with its own marker (``ingest.loaders.structure.Block.render``), chunking keeps
it with its lead-in, the answerer quotes it on a line of its own, abstention skips its number,
the reranker sees where a list starts. A stage that recognised fewer markers than the loader
kept would read « ▪ Signer la convention » as prose glued to the sentence before it.

A *list item* is a line that opens with a marker, then a space:

- a bullet: ``BULLETS`` (« - », « • », « – », « — », « * », « ▪ », « ◦ », « ● », « ➢ », « ✓ »…);
- a number of one or two digits and « . », « ) » or « ° » (« 1. », « 12) », « 3° »: French
  legal texts count « 1° », « 2° »); three digits or more is a year or an amount, not a rank;
- a lower-case letter and « . » or « ) » (« a) », « b. »).

The space matters: « 4.2 Du face-à-face » is a section number and « 2011. » a year, not items.
A *table row* is a line as the loaders render one: « | cell | cell | ».
A *step heading* (folded text) names a step: « Étape 3 », « Step 2 », « Phase 1 ».

    LIST_ITEM.match("▪ Signer la convention")          # a bullet item
    NUMBERED_ITEM.match("3° Les statuts").group(1)     # "3"
    TABLE_ROW.match("| Étape | Qui pilote |")          # a row
"""

from __future__ import annotations

import re

BULLETS = "-•–—*▪▫◦●○■□➢►✓✔·"
"""The characters a bulleted item may open with."""

_BULLET = rf"[{re.escape(BULLETS)}]"
_NUMBER = r"\d{1,2}[.)°]"
_LETTER = r"[a-z][.)]"

LIST_ITEM = re.compile(rf"^\s*(?:{_BULLET}|{_NUMBER}|{_LETTER})\s+")
"""A list item's marker with the space after it, at the start of a line (``sub`` removes it)."""

LIST_ITEMS = re.compile(rf"(?m)^\s*(?:{_BULLET}|{_NUMBER}|{_LETTER})\s+")
"""The same, at the start of every line of a text (``sub`` removes every marker)."""

BULLET_ITEM = re.compile(rf"^\s*{_BULLET}\s+")
NUMBERED_ITEM = re.compile(r"^\s*(\d{1,2})[.)°]\s+(?=\S)")
"""A numbered item; group 1 is its number."""
LETTERED_ITEM = re.compile(r"^\s*([a-z])[.)]\s+(?=\S)")
"""A lettered item; group 1 is its letter."""

TABLE_ROW = re.compile(r"^\|\s.*\s\|$")
"""A table row as the loaders write it (a stripped line)."""

STEP_HEADING = re.compile(r"^(?:etape|step|phase)\s+(\d{1,2})\b")
"""A step's heading, in folded text (``text.french.fold``); group 1 is its number."""

__all__ = [
    "BULLETS",
    "BULLET_ITEM",
    "LETTERED_ITEM",
    "LIST_ITEM",
    "LIST_ITEMS",
    "NUMBERED_ITEM",
    "STEP_HEADING",
    "TABLE_ROW",
]
