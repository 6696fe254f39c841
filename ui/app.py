"""The Gradio page (in French) for newcomers: a chat with streamed, cited answers, a sources
panel, example questions, a kind filter, feedback. Only translation and layout live here; the
answers come from ``Assistant`` and the rendering helpers from ``ui.render``.

    blocks = build_ui(assistant, feedback, state)   # then mount it (see ui.server)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from assistant.answering.citations import quoted_units, stream_steps
from assistant.core import Assistant
from assistant.errors import AllianceError, IndexNotReadyError
from assistant.feedback import FeedbackStore
from assistant.settings import KINDS
from assistant.types import Answer, Hit
from ui.api import IndexState
from ui.render import (
    answer_kind_label,
    answer_markdown,
    citation_label,
    french_spacing,
    kind_label,
    md_escape,
    notice_html,
    parse_chip,
    passage_html,
)

log = logging.getLogger(__name__)

EXAMPLES = [
    french_spacing(q)
    for q in (
        "Comment construire un partenariat entre une association et une entreprise ?",
        "Comment évaluer l'impact d'un partenariat ?",
        "Quels sont les quatre modes de partenariat ?",
        "Comment financer l'ingénierie d'une alliance ?",
    )
]
INTRO = french_spacing(
    "Posez vos questions sur les alliances entre associations, entreprises, fondations et "
    "collectivités. Chaque réponse cite ses sources : cliquez sur un numéro [1] pour lire "
    "le passage cité."
)
STREAM_DELAY_S = 0.04
HISTORY_TURNS = 3  # question/answer pairs passed to the assistant for follow-ups

NOTHING_FOUND = "Aucun passage pertinent n'a été trouvé pour cette question."
PASSAGE_PLACEHOLDER = (
    '<p class="passage-empty">Cliquez sur un numéro de source, dans la réponse ou ci-dessus, '
    "pour lire le passage cité dans son contexte.</p>"
)

# The page's script: a click on a chip ``[n]`` of an answer (a link to #source-<turn>-<n>,
# see ui.render.chip_anchor) asks the server for that passage, through a hidden textbox and
# button; then the sources panel is scrolled into view if it is off screen (a phone).
PAGE_JS = """
() => {
  document.documentElement.lang = 'fr';
  document.addEventListener('click', (event) => {
    const chip = event.target.closest && event.target.closest('a[href^="#source-"]');
    if (!chip) return;
    event.preventDefault();
    event.stopPropagation();
    const box = document.querySelector('#chip textarea, #chip input');
    const open = document.querySelector('#chip-open');
    if (!box || !open) return;
    box.value = chip.getAttribute('href').slice('#source-'.length);
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => open.click(), 50);
  }, true);
}
"""
# After an answer: show its START (its first line under the question), not its end.
SHOW_ANSWER_START_JS = """
() => {
  const bots = document.querySelectorAll('#chat .message.bot');
  const last = bots[bots.length - 1];
  if (!last) return;
  const row = last.closest('.message-row') || last;
  let box = row.parentElement;
  while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
  if (box && box !== document.documentElement && box !== document.body) {
    const top = row.getBoundingClientRect().top - box.getBoundingClientRect().top;
    box.scrollTop += top - 8;
  }
  const onPage = row.getBoundingClientRect().top;  // a phone may have scrolled the page
  if (onPage < 0 || onPage > window.innerHeight - 60) window.scrollBy(0, onPage - 8);
}
"""
# After a chip click: bring the passage into view when it is off screen.
SHOW_PASSAGE_JS = """
() => {
  const panel = document.querySelector('#passage');
  if (!panel) return;
  const r = panel.getBoundingClientRect();
  if (r.top < 0 || r.top > window.innerHeight - 80) panel.scrollIntoView({block: 'start'});
}
"""

CSS = """
.notice { padding: .6rem .9rem; border-radius: .5rem; margin: .25rem 0; }
.notice-info { background: #eef4ff; border: 1px solid #b9cdf5; }
.notice-warn { background: #fff6e5; border: 1px solid #f0c36d; }
.passage-card { font-size: .95rem; }
.passage-text { line-height: 1.5; border-left: 3px solid #b9cdf5; padding-left: .6rem;
  overflow-wrap: break-word; hyphens: auto; }
.passage-text p { margin: 0 0 .6rem 0; }
.passage-text mark { background: #ffe58a; color: inherit; padding: 0 .1rem; }
.passage-note { color: #555; font-size: .85rem; margin: 0 0 .4rem 0; }
#chat a[href^="#source-"] { display: inline-block; min-width: 1.6em; padding: 0 .35em;
  margin: 0 .1em; border-radius: .8em; background: #e3ecff; border: 1px solid #9db8ef;
  color: #1d3f8f; font-size: .8em; line-height: 1.5; text-align: center;
  text-decoration: none; vertical-align: .1em; cursor: pointer; }
#chat a[href^="#source-"]:hover, #chat a[href^="#source-"]:focus { background: #c9daff; }
.example-btn { white-space: normal !important; text-align: left !important;
  height: auto !important; }
.hidden-control { position: absolute !important; left: -10000px !important; width: 1px;
  height: 1px; overflow: hidden; }
@media (max-width: 640px) {
  .gradio-container { padding: .25rem !important; }
  #chat { height: 60vh !important; }
}
"""


@dataclass
class Turn:
    """One question and what the assistant answered (kept server-side, never re-parsed)."""

    question: str
    answer: str
    citations: list[Hit] = field(default_factory=list)
    grounded: bool = False


def index_notice(assistant: Assistant, state: IndexState) -> str:
    """The banner: index building or updating, empty, or failed; empty when all is ready."""
    if state.building and not state.blocking and assistant.search_mode() == "lexical":
        return notice_html(
            f"Index en cours de construction ({state.done}/{state.total} documents) : "
            "les réponses s'amélioreront quand il sera complet.",
            "info",
        )
    if state.building and not state.blocking:
        return notice_html(
            f"Mise à jour de l'index en cours ({state.done}/{state.total} documents) : "
            "les réponses s'appuient sur la version précédente jusqu'à la fin.",
            "info",
        )
    if state.building:
        return notice_html(
            f"L'index est en cours de construction ({state.done}/{state.total} documents). "
            "Vous pourrez poser vos questions dans un instant.",
            "warn",
        )
    if state.error:
        return notice_html(f"La construction de l'index a échoué : {state.error}", "warn")
    try:
        chunks = assistant.stats().chunks
    except AllianceError as exc:
        return notice_html(str(exc), "warn")
    if chunks == 0:
        return notice_html(
            "L'index est vide : ajoutez des documents dans le dossier du corpus puis lancez "
            "« alliance refresh ».",
            "warn",
        )
    return ""


def _history(turns: list[Turn]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for t in turns[-HISTORY_TURNS:]:
        if t.citations or t.grounded:
            out += [
                {"role": "user", "content": t.question},
                {"role": "assistant", "content": t.answer},
            ]
    return out


def _radio_update(turn: Turn | None, n: int | None = None) -> Any:
    """The sources list of ``turn`` (hidden without citations), source ``n`` selected."""
    if turn is None or not turn.citations:
        return gr.update(choices=[], value=None, visible=False)
    choices = [(citation_label(i, h), str(i)) for i, h in enumerate(turn.citations, 1)]
    value = str(n) if n is not None and 1 <= n <= len(turn.citations) else None
    label = "Sources de la réponse" if turn.grounded else "Documents proches"
    return gr.update(choices=choices, value=value, visible=True, label=label)


def _filler(text: str) -> Callable[[], str]:
    return lambda: text


def show_passage(turn: Turn, n: int) -> str:
    """The HTML of citation ``n`` (1-based) of ``turn``, highlighting what the answer quoted."""
    if not 1 <= n <= len(turn.citations):
        return PASSAGE_PLACEHOLDER
    quotes = [text for text, m in quoted_units(turn.answer) if m == n]
    return passage_html(n, turn.citations[n - 1], quotes)


def build_ui(
    assistant: Assistant,
    feedback: FeedbackStore,
    state: IndexState,
    staff: Callable[[], object] | None = None,
) -> gr.Blocks:
    """The Blocks app; mount it with ``gr.mount_gradio_app`` (see ``ui.server``, which also
    gives it ``PAGE_JS`` and ``CSS``). ``staff`` builds the staff console's components: given,
    the page gets an « Équipe » tab."""
    keep = gr.update()

    def respond(
        question: str, kinds: list[str] | None, chat: list[dict[str, Any]], turns: list[Turn]
    ) -> Iterator[tuple[Any, ...]]:
        # outputs: chat, turns, question, citations, passage, notice, feedback status, box
        question = (question or "").strip()
        if not question:
            yield keep, turns, keep, keep, keep, keep, "", keep
            return
        chat = [*chat, {"role": "user", "content": md_escape(french_spacing(question))}]
        chat.append({"role": "assistant", "content": "…"})
        yield chat, turns, "", keep, keep, keep, "", keep
        try:
            state.check()
            parts = assistant.ask_stream(question, history=_history(turns), kinds=kinds or None)
            answer: Answer | None = None
            draft = ""
            for part in parts:
                if isinstance(part, Answer):
                    answer = part
                    continue
                draft += part  # an LLM writing: show its draft (checked when it ends)
                chat[-1] = {"role": "assistant", "content": md_escape(french_spacing(draft))}
                yield chat, turns, "", keep, keep, keep, "", keep
            assert answer is not None  # every stream ends with its Answer
        except AllianceError as exc:
            turn = Turn(question, str(exc))
            chat[-1] = {"role": "assistant", "content": md_escape(french_spacing(f"⚠️ {exc}"))}
            notice = index_notice(assistant, state) if isinstance(exc, IndexNotReadyError) else ""
            radio = _radio_update(None)
            yield chat, [*turns, turn], "", radio, PASSAGE_PLACEHOLDER, notice, "", keep
            return
        text = answer.text if answer.citations or answer.grounded else NOTHING_FOUND
        turn = Turn(question, text, list(answer.citations), answer.grounded)
        for step in [] if draft else stream_steps(text)[:-1]:  # an LLM draft already streamed
            chat[-1] = {"role": "assistant", "content": md_escape(french_spacing(step))}
            yield chat, turns, "", keep, keep, keep, "", keep
            time.sleep(STREAM_DELAY_S)
        chat[-1] = {
            "role": "assistant",
            "content": answer_markdown(text, turn.citations, turn.grounded, turn=len(turns))
            + answer_kind_label(answer.kind, answer.grounded),
        }
        new_turns = [*turns, turn]
        box = gr.update(visible=True)
        yield chat, new_turns, "", _radio_update(turn), PASSAGE_PLACEHOLDER, "", "", box

    def on_citation(choice: str | None, turns: list[Turn], selected: int | None) -> str:
        if not choice or not turns:
            return PASSAGE_PLACEHOLDER
        idx = selected if selected is not None and 0 <= selected < len(turns) else len(turns) - 1
        return show_passage(turns[idx], int(choice))

    def on_chip(value: str, turns: list[Turn]) -> tuple[Any, str, int | None]:
        """A click on chip [n] of answer ``t``: that answer's sources, passage n open."""
        chip = parse_chip(value)
        if chip is None or not 0 <= chip[0] < len(turns):
            return keep, PASSAGE_PLACEHOLDER, None
        t, n = chip
        return _radio_update(turns[t], n), show_passage(turns[t], n), t

    def on_select(turns: list[Turn], evt: gr.SelectData) -> tuple[Any, str, int | None]:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        idx = int(index) // 2
        if not 0 <= idx < len(turns):
            return keep, PASSAGE_PLACEHOLDER, None
        return _radio_update(turns[idx]), PASSAGE_PLACEHOLDER, idx

    def on_feedback(
        useful: bool, comment: str, turns: list[Turn], selected: int | None
    ) -> tuple[str, str]:
        if not turns:
            return "Posez d'abord une question.", comment
        turn = turns[selected] if selected is not None and 0 <= selected < len(turns) else turns[-1]
        try:
            feedback.add(turn.question, turn.answer, turn.citations, useful, comment or "")
        except AllianceError as exc:
            return french_spacing(f"Retour non enregistré : {exc}"), comment
        return french_spacing("Merci ! Votre avis est enregistré."), ""

    def new_conversation() -> tuple[Any, ...]:
        hidden = gr.update(visible=False)
        return [], [], None, _radio_update(None), PASSAGE_PLACEHOLDER, "", "", "", hidden

    def on_load() -> tuple[str, Any]:
        return index_notice(assistant, state), gr.Timer(active=state.building)

    with gr.Blocks(title="Alliance — faire alliance", analytics_enabled=False) as blocks:
        tabs: Any = gr.Tabs() if staff is not None else nullcontext()
        with tabs:
            with gr.Tab("Assistant", id="assistant") if staff is not None else nullcontext():
                turns_state = gr.State([])
                selected_state = gr.State(None)
                gr.Markdown("# Alliance\n" + md_escape(INTRO), elem_id="intro")
                notice = gr.HTML(elem_id="notice")
                timer = gr.Timer(2.0, active=False)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        chat = gr.Chatbot(
                            elem_id="chat",
                            label="Conversation",
                            show_label=False,  # a floating label would hide the first line
                            autoscroll=False,  # the start of each answer is shown instead
                            height=460,
                            render_markdown=True,
                            sanitize_html=True,
                            allow_tags=False,
                            feedback_options=None,
                            latex_delimiters=[],
                            buttons=["copy", "copy_all"],
                            placeholder=french_spacing(
                                "Posez une question ou choisissez un exemple ci-dessous."
                            ),
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                elem_id="question",
                                show_label=False,
                                placeholder=french_spacing(
                                    "Votre question… (ex. : comment évaluer un partenariat ?)"
                                ),
                                max_length=1000,
                                lines=1,
                                scale=5,
                                min_width=200,
                                submit_btn=False,
                            )
                            send = gr.Button("Envoyer", variant="primary", elem_id="send", scale=1)
                    # Beside the answer on a desktop, right under it on a phone.
                    with (
                        gr.Column(scale=2, min_width=300, elem_id="sources-panel"),
                        gr.Accordion("Sources", open=True, elem_id="sources"),
                    ):
                        citations = gr.Radio(
                            choices=[],
                            label="Sources de la réponse",
                            elem_id="citations",
                            visible=False,
                        )
                        passage = gr.HTML(PASSAGE_PLACEHOLDER, elem_id="passage")
                chip = gr.Textbox(elem_id="chip", elem_classes=["hidden-control"], show_label=False)
                chip_open = gr.Button(
                    "Voir le passage", elem_id="chip-open", elem_classes=["hidden-control"]
                )
                with gr.Row():
                    kinds = gr.Dropdown(
                        choices=[(kind_label(k), k) for k in KINDS],
                        multiselect=True,
                        label="Filtrer par type de document",
                        elem_id="kinds",
                        scale=3,
                    )
                    reset = gr.Button("Nouvelle conversation", elem_id="reset", scale=1)
                gr.Markdown("**Exemples de questions**", elem_id="examples-label")
                with gr.Row(elem_id="examples"):
                    example_buttons = [
                        gr.Button(q, size="sm", elem_classes=["example-btn"], min_width=160)
                        for q in EXAMPLES
                    ]
                with gr.Accordion(
                    french_spacing("Cette réponse vous a-t-elle aidé ?"),
                    open=True,
                    visible=False,  # shown once there is an answer to judge
                    elem_id="feedback",
                ) as feedback_box:
                    with gr.Row():
                        useful_btn = gr.Button("Oui, utile", elem_id="useful", size="sm")
                        useless_btn = gr.Button("Non, pas utile", elem_id="useless", size="sm")
                    comment = gr.Textbox(
                        label="Commentaire (facultatif)",
                        elem_id="comment",
                        max_length=2000,
                        lines=2,
                    )
                    feedback_status = gr.Markdown(elem_id="feedback-status")

                outputs = [chat, turns_state, question, citations, passage, notice]
                outputs += [feedback_status, feedback_box]
                for trigger in (send.click, question.submit):
                    trigger(respond, [question, kinds, chat, turns_state], outputs).then(
                        lambda: None, None, selected_state, js=SHOW_ANSWER_START_JS
                    )
                for button, text in zip(example_buttons, EXAMPLES, strict=True):
                    button.click(_filler(text), None, question)
                citations.change(on_citation, [citations, turns_state, selected_state], passage)
                chip_open.click(
                    on_chip, [chip, turns_state], [citations, passage, selected_state]
                ).then(None, None, None, js=SHOW_PASSAGE_JS)
                chat.select(on_select, [turns_state], [citations, passage, selected_state])
                useful_btn.click(
                    lambda c, t, s: on_feedback(True, c, t, s),
                    [comment, turns_state, selected_state],
                    [feedback_status, comment],
                )
                useless_btn.click(
                    lambda c, t, s: on_feedback(False, c, t, s),
                    [comment, turns_state, selected_state],
                    [feedback_status, comment],
                )
                reset_outputs = [chat, turns_state, selected_state, citations, passage]
                reset_outputs += [feedback_status, comment, question, feedback_box]
                reset.click(new_conversation, None, reset_outputs)
                chat.clear(new_conversation, None, reset_outputs)
                blocks.load(on_load, None, [notice, timer])
                timer.tick(on_load, None, [notice, timer])
            if staff is not None:  # the staff console, only when a token is set
                with gr.Tab("Équipe", id="equipe"):
                    staff()
    return blocks
