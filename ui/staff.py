"""The staff console in the web UI: log in with the admin token, then upload PDF/HTML files,
see each document's status, delete one, run a refresh with a progress bar, read the last
reports and the newcomers' feedback. All logic is ``assistant.staff.StaffConsole``.

Built only when ``ALLIANCE_ADMIN_TOKEN`` is set (the caller decides); each handler checks the
token kept in the session's server-side state, so the events answer nothing to whoever did
not log in, through the page or through Gradio's API.

    with gr.Tab("Équipe"):          # inside build_ui's Blocks
        staff_tab(StaffConsole(assistant, feedback), token)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.errors import AllianceError
from assistant.indexing.active import switch_notice
from assistant.staff import UPLOAD_FOLDERS, StaffConsole, token_ok
from assistant.types import RefreshReport

DENIED = "Accès refusé : connectez-vous avec le jeton d'administration."
DOC_HEADERS = ["document", "statut", "raison", "passages", "pages"]
FEEDBACK_HEADERS = ["date", "utile", "question", "commentaire"]
_POLL_S = 0.2


class StaffHandlers:
    """The tab's event handlers as plain methods (tested without a browser)."""

    def __init__(self, console: StaffConsole, token: str) -> None:
        self.console = console
        self.token = token

    def login(self, given: str) -> tuple[str, str]:
        """(session token or "", message)."""
        if token_ok((given or "").strip(), self.token):
            return self.token, "Connecté."
        time.sleep(0.5)  # slows down guessing
        return "", "Jeton incorrect."

    def documents(self, session: str) -> list[list[Any]]:
        if not token_ok(session, self.token):
            return []
        return [
            [d["source"], d["status"], d["reason"], d["chunks"], d["pages"] or ""]
            for d in self.console.documents()
        ]

    def upload(
        self, session: str, files: list[str] | None, folder: str, replace: bool = False
    ) -> str:
        if not token_ok(session, self.token):
            return DENIED
        lines = []
        for name in files or []:
            path = Path(name)
            try:
                data = path.read_bytes()
                source = self.console.upload(path.name, data, folder, replace=replace)
                lines.append(f"- ✅ {source}")
            except AllianceError as exc:
                lines.append(f"- ❌ {path.name} : {getattr(exc, 'reason', exc)}")
        if not lines:
            return "Aucun fichier."
        return "\n".join([*lines, "", "Lancez un rafraîchissement pour les indexer."])

    def delete(self, session: str, source: str) -> str:
        if not token_ok(session, self.token):
            return DENIED
        try:
            self.console.delete((source or "").strip())
        except AllianceError as exc:
            return f"❌ {getattr(exc, 'reason', exc)}"
        return f"🗑️ {source} supprimé ; il quittera l'index au prochain rafraîchissement."

    def refresh(self, session: str, progress: Any = None) -> str:
        """Start a refresh, follow it with ``progress(fraction, desc)``, return its summary."""
        if not token_ok(session, self.token):
            return DENIED
        try:
            self.console.start_refresh()
        except AllianceError as exc:
            return f"❌ {exc}"
        while (run := self.console.refresh_status()).running:
            if progress is not None and run.total:
                progress(run.done / run.total, desc=f"{run.done}/{run.total} {run.source}")
            time.sleep(_POLL_S)
        if run.error:
            return f"❌ {run.error}"
        return summarize(run.report or {})

    def reports(self, session: str) -> str:
        if not token_ok(session, self.token):
            return DENIED
        entries = self.console.reports(5)
        return "\n\n".join(summarize(e) for e in entries) or "Aucun rapport."

    def feedback(self, session: str) -> list[list[Any]]:
        if not token_ok(session, self.token):
            return []
        return [
            [
                time.strftime("%Y-%m-%d %H:%M", time.localtime(f["created_at"])),
                "oui" if f["useful"] else "non",
                f["question"],
                f["comment"],
            ]
            for f in self.console.recent_feedback(50)
        ]


def summarize(report: dict[str, Any]) -> str:
    """A refresh report in Markdown: totals, then documents that changed or need attention."""
    docs = report.get("documents", [])
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    head = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    when = report.get("at", "")
    lines = [
        f"**{when or 'Rafraîchissement'}** — {head} ; {report.get('chunks_embedded', 0)} "
        f"passages vectorisés, {report.get('chunks_removed', 0)} retirés"
    ]
    for d in docs:
        if d["status"] == "unchanged" and not d.get("reason"):
            continue
        pages = d.get("pages_changed") or []
        extra = f" — pages modifiées : {', '.join(map(str, pages))}" if pages else ""
        reason = f" — {d['reason']}" if d.get("reason") else ""
        lines.append(f"- `{d['status']}` {md_code(d['source'])}{reason}{extra}")
    lines += [f"\n**{line}**" for line in switch_notice(RefreshReport.from_dict(report))]
    return "\n".join(lines)


def md_code(text: str) -> str:
    """A source name shown as inline code (file names may hold Markdown characters)."""
    return "`" + text.replace("`", "'") + "`"


def staff_tab(console: StaffConsole, token: str) -> StaffHandlers:
    """Build the console's components inside the current Blocks (e.g. under a gr.Tab)."""
    h = StaffHandlers(console, token)
    private: dict[str, Any] = {"api_visibility": "private"}
    session = gr.State("")
    with gr.Row():
        given = gr.Textbox(label="Jeton d'administration", type="password", scale=3)
        login_btn = gr.Button("Se connecter", scale=1)
    status = gr.Markdown()
    with gr.Column(visible=False) as panel:
        docs = gr.Dataframe(headers=DOC_HEADERS, label="Documents", interactive=False)
        with gr.Row():
            files = gr.File(
                label="Déposer des PDF / HTML",
                file_count="multiple",
                file_types=[".pdf", ".html", ".htm"],
                type="filepath",
            )
            folder = gr.Dropdown(list(UPLOAD_FOLDERS), value="boite-a-outils", label="Dossier")
        replace = gr.Checkbox(False, label="Remplacer un fichier du même nom")
        upload_btn = gr.Button("Déposer")
        with gr.Row():
            to_delete = gr.Textbox(label="Document à supprimer (chemin affiché ci-dessus)")
            delete_btn = gr.Button("Supprimer", variant="stop")
        refresh_btn = gr.Button("Rafraîchir l'index", variant="primary")
        result = gr.Markdown()
        reports_btn = gr.Button("Derniers rapports")
        reports = gr.Markdown()
        feedback = gr.Dataframe(headers=FEEDBACK_HEADERS, label="Retours des utilisateurs")

    def do_login(value: str) -> tuple[Any, ...]:
        tok, message = h.login(value)
        return tok, message, gr.update(visible=bool(tok)), h.documents(tok), h.feedback(tok)

    login_btn.click(do_login, [given], [session, status, panel, docs, feedback], **private)

    def do_refresh(tok: str, progress: gr.Progress = gr.Progress()) -> tuple[str, Any]:  # noqa: B008
        return h.refresh(tok, progress), h.documents(tok)

    upload_btn.click(h.upload, [session, files, folder, replace], [result], **private).then(
        h.documents, [session], [docs], **private
    )
    delete_btn.click(h.delete, [session, to_delete], [result], **private).then(
        h.documents, [session], [docs], **private
    )
    refresh_btn.click(do_refresh, [session], [result, docs], **private)
    reports_btn.click(h.reports, [session], [reports], **private)
    return h


def build_staff_ui(console: StaffConsole, token: str) -> gr.Blocks:
    """The console as its own page (mountable at ``/staff`` with ``gr.mount_gradio_app``)."""
    with gr.Blocks(title="Alliance — équipe", analytics_enabled=False) as blocks:
        gr.Markdown("# Console de l'équipe")
        staff_tab(console, token)
    return blocks
