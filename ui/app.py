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
    kind_label,
    md_escape,
    notice_html,
    passage_html,
    quoted_units,
    stream_steps,
)

log = logging.getLogger(__name__)

EXAMPLES = [
    "Comment construire un partenariat entre une association et une entreprise ?",
    "Comment évaluer l'impact d'un partenariat ?",
    "Quels sont les quatre modes de partenariat ?",
    "Comment financer l'ingénierie d'une alliance ?",
]
STREAM_DELAY_S = 0.04
HISTORY_TURNS = 3  # question/answer pairs passed to the assistant for follow-ups

NOTHING_FOUND = "Aucun passage pertinent n'a été trouvé pour cette question."
PASSAGE_PLACEHOLDER = (
    '<p class="passage-empty">Cliquez sur une source pour voir le passage cité '
    "dans son contexte.</p>"
)

CSS = """
.notice { padding: .6rem .9rem; border-radius: .5rem; margin: .25rem 0; }
.notice-info { background: #eef4ff; border: 1px solid #b9cdf5; }
.notice-warn { background: #fff6e5; border: 1px solid #f0c36d; }
.passage-card { font-size: .95rem; }
.passage-text { white-space: pre-wrap; line-height: 1.45; max-height: 50vh; overflow-y: auto;
  border-left: 3px solid #b9cdf5; padding-left: .6rem; }
.passage-text mark { background: #ffe58a; color: inherit; padding: 0 .1rem; }
.passage-source { color: #666; font-size: .85rem; word-break: break-all; }
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
        chunks = int(assistant.stats()["chunks"])
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


def _radio_update(turn: Turn | None) -> Any:
    if turn is None or not turn.citations:
        return gr.update(choices=[], value=None, visible=False)
    choices = [(citation_label(i, h), str(i)) for i, h in enumerate(turn.citations, 1)]
    return gr.update(choices=choices, value=None, visible=True)


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
    """The Blocks app; mount it with ``gr.mount_gradio_app`` (see ``ui.server``). ``staff``
    builds the staff console's components: given, the page gets an « Équipe » tab."""

    def respond(
        question: str, kinds: list[str] | None, chat: list[dict[str, Any]], turns: list[Turn]
    ) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield gr.update(), turns, gr.update(), gr.update(), gr.update(), gr.update(), ""
            return
        chat = [*chat, {"role": "user", "content": md_escape(question)}]
        chat.append({"role": "assistant", "content": "…"})
        yield chat, turns, "", gr.update(), gr.update(), gr.update(), ""
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
                chat[-1] = {"role": "assistant", "content": md_escape(draft)}
                yield chat, turns, "", gr.update(), gr.update(), gr.update(), ""
            assert answer is not None  # every stream ends with its Answer
        except IndexNotReadyError as exc:
            turn = Turn(question, str(exc))
            chat[-1] = {"role": "assistant", "content": md_escape(f"⚠️ {exc}")}
            yield (
                chat,
                [*turns, turn],
                "",
                _radio_update(None),
                PASSAGE_PLACEHOLDER,
                index_notice(assistant, state),
                "",
            )
            return
        except AllianceError as exc:
            turn = Turn(question, str(exc))
            chat[-1] = {"role": "assistant", "content": md_escape(f"⚠️ {exc}")}
            yield chat, [*turns, turn], "", _radio_update(None), PASSAGE_PLACEHOLDER, "", ""
            return
        text = answer.text if answer.citations or answer.grounded else NOTHING_FOUND
        turn = Turn(question, text, list(answer.citations), answer.grounded)
        for step in [] if draft else stream_steps(text)[:-1]:  # an LLM draft already streamed
            chat[-1] = {"role": "assistant", "content": md_escape(step)}
            yield chat, turns, "", gr.update(), gr.update(), gr.update(), ""
            time.sleep(STREAM_DELAY_S)
        chat[-1] = {
            "role": "assistant",
            "content": answer_markdown(text, turn.citations, turn.grounded)
            + answer_kind_label(answer.kind, answer.grounded),
        }
        new_turns = [*turns, turn]
        yield chat, new_turns, "", _radio_update(turn), PASSAGE_PLACEHOLDER, "", ""

    def on_citation(choice: str | None, turns: list[Turn], selected: int | None) -> str:
        if not choice or not turns:
            return PASSAGE_PLACEHOLDER
        idx = selected if selected is not None and 0 <= selected < len(turns) else len(turns) - 1
        return show_passage(turns[idx], int(choice))

    def on_select(turns: list[Turn], evt: gr.SelectData) -> tuple[Any, str, int | None]:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        idx = int(index) // 2
        if not 0 <= idx < len(turns):
            return gr.update(), PASSAGE_PLACEHOLDER, None
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
            return f"Retour non enregistré : {exc}", comment
        return "Merci ! Votre avis est enregistré.", ""

    def new_conversation() -> tuple[Any, ...]:
        return [], [], None, _radio_update(None), PASSAGE_PLACEHOLDER, "", "", ""

    def on_load() -> tuple[str, Any]:
        return index_notice(assistant, state), gr.Timer(active=state.building)

    with gr.Blocks(title="Alliance — faire alliance", analytics_enabled=False) as blocks:
        tabs: Any = gr.Tabs() if staff is not None else nullcontext()
        with tabs:
            with gr.Tab("Assistant", id="assistant") if staff is not None else nullcontext():
                turns_state = gr.State([])
                selected_state = gr.State(None)
                gr.Markdown(
                    "# Alliance\n"
                    "Posez vos questions sur les alliances entre associations, entreprises, "
                    "fondations et collectivités. Chaque réponse cite ses sources ; cliquez sur "
                    "une source pour lire le passage."
                )
                notice = gr.HTML(elem_id="notice")
                timer = gr.Timer(2.0, active=False)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        chat = gr.Chatbot(
                            elem_id="chat",
                            label="Conversation",
                            height=460,
                            render_markdown=True,
                            sanitize_html=True,
                            allow_tags=False,
                            feedback_options=None,
                            latex_delimiters=[],
                            buttons=["copy", "copy_all"],
                            placeholder="Posez une question ou choisissez un exemple ci-dessous.",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                elem_id="question",
                                show_label=False,
                                placeholder=(
                                    "Votre question… (ex. : comment évaluer un partenariat ?)"
                                ),
                                max_length=1000,
                                lines=1,
                                scale=5,
                                min_width=200,
                                submit_btn=False,
                            )
                            send = gr.Button("Envoyer", variant="primary", elem_id="send", scale=1)
                        with gr.Row():
                            kinds = gr.Dropdown(
                                choices=[(kind_label(k), k) for k in KINDS],
                                multiselect=True,
                                label="Filtrer par type de document",
                                elem_id="kinds",
                                scale=3,
                            )
                            reset = gr.Button("Nouvelle conversation", elem_id="reset", scale=1)
                        gr.Examples(
                            examples=[[q] for q in EXAMPLES],
                            inputs=[question],
                            label="Exemples de questions",
                        )
                        with gr.Accordion("Cette réponse vous a-t-elle aidé ?", open=True):
                            with gr.Row():
                                useful_btn = gr.Button("Oui, utile", elem_id="useful", size="sm")
                                useless_btn = gr.Button(
                                    "Non, pas utile", elem_id="useless", size="sm"
                                )
                            comment = gr.Textbox(
                                label="Commentaire (facultatif)",
                                elem_id="comment",
                                max_length=2000,
                                lines=2,
                            )
                            feedback_status = gr.Markdown(elem_id="feedback-status")
                    with gr.Column(scale=2, min_width=300):
                        gr.Markdown("## Sources")
                        citations = gr.Radio(
                            choices=[],
                            label="Sources de la réponse",
                            elem_id="citations",
                            visible=False,
                        )
                        passage = gr.HTML(PASSAGE_PLACEHOLDER, elem_id="passage")

                outputs = [chat, turns_state, question, citations, passage, notice, feedback_status]
                send.click(respond, [question, kinds, chat, turns_state], outputs).then(
                    lambda: None, None, selected_state
                )
                question.submit(respond, [question, kinds, chat, turns_state], outputs).then(
                    lambda: None, None, selected_state
                )
                citations.change(on_citation, [citations, turns_state, selected_state], passage)
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
                reset_outputs += [feedback_status, comment, question]
                reset.click(new_conversation, None, reset_outputs)
                chat.clear(new_conversation, None, reset_outputs)
                blocks.load(on_load, None, [notice, timer])
                timer.tick(on_load, None, [notice, timer])
            if staff is not None:  # the staff console, only when a token is set
                with gr.Tab("Équipe", id="equipe"):
                    staff()
    return blocks
