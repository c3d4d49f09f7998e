"""The `fournil` command (docs/contracts.md).

Exit codes: 0 success, 2 bad input on the command line (one line on stderr, in the user's
language), 1 a configuration problem (a setting, a token, a server it names: one line that
says which setting and where its value came from) or an unexpected failure (one line; the
traceback only with FOURNIL_LOG_LEVEL=DEBUG).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.app import build_coach, build_llm, open_flow, open_store, store_error
from bot.channels.terminal import (
    card_renderable,
    comparison_renderable,
    print_reply,
    run_chat,
    terminal_markdown,
)
from bot.core.coach import Coach, InvalidOpener
from bot.core.errors import FournilError
from bot.core.flow import CoachingFlow, complete
from bot.core.models import ConversationKey, LlmStatus, Reply, ReplyKind
from bot.core.ports import CardRecord, LlmAssist, PracticeRecord
from bot.logs import setup_logging
from bot.settings import Settings, load_settings, with_setting_origin

if TYPE_CHECKING:
    from bot.evaluation import EvalReport

log = logging.getLogger("fournil")
LANG_CHOICE = click.Choice(["fr", "en"])
EXAMPLE_OPENER = (
    "Hi Sarah, I'm Tom from DataCorp. We are a leading provider of AI-powered analytics "
    "solutions. Would you be open to a 15-minute call next week to see a demo?"
)


class BadInput(FournilError):
    """Bad input on the command line: exit code 2."""


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message.splitlines()[0] if message else "error", err=True)
    sys.exit(code)


class _Context:
    """Settings are read once per command; the coach is built only by commands that need it,
    with the knowledge search (related principles, /ask) unless --no-search was given."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.with_search = True
        self._coach: Coach | None = None
        self._llm: tuple[LlmAssist | None] | None = None

    @property
    def coach(self) -> Coach:
        if self._coach is None:
            self._coach = build_coach(self.settings, with_search=self.with_search)
        return self._coach

    @property
    def one_shot_coach(self) -> Coach:
        """The coach of a command that prints once and ends (`coach`, `compare`, `ask`):
        its cards point at what the command line can do next, not at chat commands, and
        their related principles may come from the index's copy in the data dir (the same
        principles, without opening Chroma)."""
        if self._coach is None:
            if self.settings.learned_detectors or self.with_search:
                from bot.knowledge.embedder import load_in_background

                load_in_background()  # beside the loading of the knowledge base (~0.3 s sooner)
            self._coach = build_coach(self.settings, with_search=self.with_search, one_shot=True)
        return replace(self.coach, ui={lang: ui.one_shot() for lang, ui in self.coach.ui.items()})

    @property
    def llm(self) -> LlmAssist | None:
        """The LLM when FOURNIL_LLM is set and --no-llm was not given (built once)."""
        if self._llm is None:
            self._llm = (build_llm(self.settings, self.coach),)
        return self._llm[0]

    def flow(self) -> CoachingFlow:
        from bot.store.memory import MemoryStore

        return CoachingFlow(self.one_shot_coach, MemoryStore(), llm=self.llm)


NO_SEARCH_HELP = "Skip the knowledge index (faster start; no related principles, no ask)."
NO_LLM_HELP = "Do not use the LLM set by FOURNIL_LLM for this run (the embedded coach only)."


def _no_search(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--no-search` after the command name (`fournil coach --no-search …`)."""
    if value:
        ctx.find_object(_Context).with_search = False  # type: ignore[union-attr]


def _no_llm(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--no-llm`, before or after the command name: FOURNIL_LLM is ignored for this run."""
    if value:
        context = ctx.find_object(_Context)
        assert context is not None
        context.settings = context.settings.model_copy(update={"llm": None})


def _configuration_error(exc: ValidationError) -> str:
    """One line for a setting that cannot be read: its variable, the problem, and where the
    value came from (`configuration: FOURNIL_PORT: Input should be a valid integer …`)."""
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"]))
    problem = re.sub(r"^(Value|Assertion) error, ", "", str(first["msg"]))
    return with_setting_origin(f"configuration: {where}: {problem}" if where else f"configuration: {problem}")


pass_context = click.make_pass_decorator(_Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fournil")
@click.option(
    "--no-search",
    is_flag=True,
    help=NO_SEARCH_HELP,
)
@click.option("--no-llm", is_flag=True, help=NO_LLM_HELP)
@click.pass_context
def cli(ctx: click.Context, no_search: bool, no_llm: bool) -> None:
    """Fournil: coaching for B2B openers that turns pitches into real questions."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        _fail(_configuration_error(exc), code=1)
    setup_logging(settings.log_level)
    ctx.obj = _Context(settings)
    ctx.obj.with_search = not no_search
    if no_llm:
        ctx.obj.settings = settings.model_copy(update={"llm": None})


def _read_text(text: str | None) -> str:
    """TEXT from the argument, or from stdin for `-` or no argument (decoded leniently so
    binary input is recognised and declined instead of crashing the decoder)."""
    if text is not None and text != "-":
        return text
    if sys.stdin is None or sys.stdin.isatty():
        raise BadInput("no opener given: pass TEXT, or '-' to read it from stdin")
    data = sys.stdin.buffer.read(10_000_000)
    return data.decode("utf-8", errors="replace")


def _card_json(reply: Reply) -> dict[str, Any]:
    if reply.card is None:
        return {"language": reply.language, "kind": reply.kind.value, "message": reply.text}
    return reply.card.model_dump(mode="json")


def _emit(reply: Reply, as_json: bool, console: Console, coach: Coach) -> None:
    if reply.kind == ReplyKind.INVALID:
        _fail(reply.text)
    if as_json:
        click.echo(json.dumps(_card_json(reply), ensure_ascii=False))
    else:
        print_reply(console, reply, coach.strings)


@cli.command()
@click.argument("text", required=False)
@click.option("--lang", type=LANG_CHOICE, help="Coach in this language instead of detecting it.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON (docs/contracts.md).")
@click.option("--batch", type=click.Path(path_type=Path), help="One opener per line, or JSONL with `text`.")
@click.option("--example", is_flag=True, help="Coach a built-in example opener.")
@pass_context
def coach(
    ctx: _Context, text: str | None, lang: str | None, as_json: bool, batch: Path | None, example: bool
) -> None:
    """Coach card for TEXT (or stdin with `-`)."""
    lang = lang or ctx.settings.force_language
    if example and batch is not None:
        raise BadInput("--example and --batch cannot be used together: choose one")
    if text is not None and (example or batch is not None):
        given = "--example" if example else "--batch"
        raise BadInput(f"{given} takes no TEXT: drop the text, or drop {given} to coach the text")
    console = Console()
    flow = ctx.flow()
    if batch is not None:
        _coach_batch(flow, batch, lang, as_json, console)
        return
    opener = EXAMPLE_OPENER if example else _read_text(text)
    if example and not as_json:
        console.print(f"[dim]{opener}[/dim]")
    reply = flow.coach_text(opener, lang)
    if reply.follow_up is not None:  # with an LLM: one result, the card with its part
        reply = asyncio.run(complete(reply))
    _emit(reply, as_json, console, flow.coach)


def _batch_items(path: Path) -> Iterator[tuple[int, str, str | None]]:
    try:
        raw = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, "", f"line {number}: invalid JSON ({exc.msg})"
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                yield number, "", f"line {number}: a JSON line needs a string `text`"
                continue
            lang = obj.get("lang") if obj.get("lang") in ("fr", "en") else None
            yield number, obj["text"], lang
        else:
            yield number, line.replace("\\n", "\n"), None


def _coach_batch(flow: CoachingFlow, path: Path, lang: str | None, as_json: bool, console: Console) -> None:
    # One event loop for every line's LLM part (the model's HTTP client is tied to it).
    with asyncio.Runner() as runner:
        for number, text, item_lang in _batch_items(path):
            if not text:
                message = item_lang or f"line {number}: empty"
                if as_json:
                    click.echo(json.dumps({"line": number, "error": message}, ensure_ascii=False))
                else:
                    console.print(f"[yellow]{escape(message)}[/yellow]")
                continue
            reply = flow.coach_text(text, lang or item_lang)
            if reply.follow_up is not None:
                reply = runner.run(complete(reply))
            if as_json:
                payload = (
                    _card_json(reply)
                    if reply.kind != ReplyKind.INVALID
                    else {"line": number, "error": reply.text}
                )
                click.echo(json.dumps(payload, ensure_ascii=False))
            elif reply.kind == ReplyKind.INVALID:
                console.print(f"[yellow]line {number}: {escape(reply.text)}[/yellow]")
            else:
                console.rule(f"line {number}")
                print_reply(console, reply, flow.coach.strings)


@cli.command()
@click.argument("question", nargs=-1)
@click.option("--lang", type=LANG_CHOICE, help="Answer in this language instead of detecting it.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (docs/contracts.md).")
@pass_context
def ask(ctx: _Context, question: tuple[str, ...], lang: str | None, as_json: bool) -> None:
    """Answer a question about the method from the knowledge base, citing principles."""
    text = " ".join(question) if question else _read_text(None)
    flow = ctx.flow()
    reply, answer = flow.ask(text, lang or ctx.settings.force_language)
    if reply.kind == ReplyKind.INVALID:
        _fail(reply.text)
    if not ctx.with_search and reply.kind != ReplyKind.REFUSAL:
        # turned off on purpose: not an outage, and no answer to print (a request to write
        # the message is still declined, with why: that needs no search)
        _fail(flow.coach.strings(reply.language).text("ask", "search_off"))
    if flow.llm is not None:  # after the off-topic and write-request gate, which needs no call
        reply, answer = asyncio.run(flow.answer_with_llm(text, reply, answer))
    if as_json:
        payload: dict[str, Any] = (
            answer.model_dump(mode="json")
            if answer is not None
            else {"language": reply.language, "answer": reply.text, "principles": []}
        )
        payload["llm"] = (reply.llm or LlmStatus.off()).model_dump(mode="json")
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    Console().print(terminal_markdown(reply.text))


@cli.command()
@click.argument("before")
@click.argument("after")
@click.option("--lang", type=LANG_CHOICE)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def compare(ctx: _Context, before: str, after: str, lang: str | None, as_json: bool) -> None:
    """Compare a rewrite (AFTER) with the original (BEFORE)."""
    coach_ = ctx.one_shot_coach
    lang = lang or ctx.settings.force_language
    try:
        comparison = coach_.compare(before, after, lang)
    except InvalidOpener as invalid:
        _fail(str(invalid))
    llm = ctx.llm
    if llm is not None:  # the new version's card gets the LLM's part; the figures stay embedded
        comparison = comparison.model_copy(update={"after": asyncio.run(llm.enrich(comparison.after, after))})
    if as_json:
        click.echo(json.dumps(comparison.model_dump(mode="json"), ensure_ascii=False))
        return
    console = Console()
    ui = coach_.strings(comparison.language)
    console.print(comparison_renderable(comparison, ui))
    console.print(card_renderable(comparison.after, ui))


@cli.command()
@click.option("--user", default=None, help="Whose conversation (default: your login).")
@click.option("--conversation", default="terminal", show_default=True)
@pass_context
def chat(ctx: _Context, user: str | None, conversation: str) -> None:
    """The whole conversation in the terminal; state survives a restart."""
    console = Console()
    key = ConversationKey(channel="terminal", user_id=user or _login(), conversation_id=conversation)

    def read_line(prompt: str) -> str:
        if sys.stdin.isatty():
            return console.input(prompt)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    async def main() -> None:
        async with open_flow(ctx.settings, ctx.coach) as flow:
            await run_chat(flow, key, read_line, console)

    asyncio.run(main())


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


@cli.command()
@pass_context
def slack(ctx: _Context) -> None:
    """Run the Slack app: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on FOURNIL_HOST:FOURNIL_PORT."""
    from bot.channels.slack import run_slack

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_slack(ctx.settings))


@cli.command()
@pass_context
def telegram(ctx: _Context) -> None:
    """Run the Telegram bot: long polling, or webhook when TELEGRAM_WEBHOOK_URL is set."""
    from bot.channels.telegram import run_telegram

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_telegram(ctx.settings))


@cli.command()
@pass_context
def serve(ctx: _Context) -> None:
    """Health (/healthz) and Prometheus metrics (/metrics) on FOURNIL_HOST:FOURNIL_PORT."""
    from bot.serve import serve_health

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_health(ctx.settings))


@cli.group()
def kb() -> None:
    """The knowledge base: check and list."""


@kb.command("check")
@pass_context
def kb_check(ctx: _Context) -> None:
    """Validate every principle, rule, lexicon and prompt file; run the rules' examples;
    check that the learned weights were trained on the files as they are."""
    from bot.knowledge.check import check_knowledge

    problems = check_knowledge(ctx.settings.knowledge_dir, ctx.settings.prompts_dir)
    problems += _ask_problems(ctx.settings.knowledge_dir)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        _fail(f"{len(problems)} problem(s) found", code=1)
    click.echo("knowledge base OK")


@kb.command("index")
@pass_context
def kb_index(ctx: _Context) -> None:
    """Build or update the principle index (only changed principles are embedded again)."""
    from rich.progress import Progress

    from bot.app import keep_related_copy, load_principles
    from bot.knowledge.index import PrincipleIndex, chroma_client

    principles = load_principles(ctx.settings)
    with Progress(transient=True) as progress:
        task = progress.add_task("embedding", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        index, stats = PrincipleIndex.open(
            chroma_client(ctx.settings),
            principles,
            progress=advance,
            offtopic=ctx.settings.knowledge_dir / "offtopic.yaml",
        )
    keep_related_copy(ctx.settings, index, principles)  # what a one-shot card reads
    click.echo(
        f"index up to date: {stats.added} added, {stats.updated} updated, "
        f"{stats.removed} removed, {stats.unchanged} unchanged"
    )


def _ask_problems(knowledge_dir: Path) -> list[str]:
    """`ask`'s question reader (knowledge/ask/): its corpus, policy and fresh weights."""
    from bot.knowledge.ask_training import ask_problems
    from bot.knowledge.principles import PrincipleStore

    try:
        store = PrincipleStore.load(knowledge_dir / "principles")
    except FournilError:
        return []  # the principles' own check names the broken file
    return ask_problems(knowledge_dir, store)


@kb.command("train")
@click.option(
    "--only",
    type=click.Choice(["detectors", "ask"]),
    default=None,
    help="Train one part: the sentence detectors or ask's question reader (default: both).",
)
@pass_context
def kb_train(ctx: _Context, only: str | None) -> None:
    """Rebuild the learned models from their corpora (reproducible: same corpus, settings
    and code give the same weights): the sentence detectors (knowledge/detectors/) and
    ask's question reader (knowledge/ask/, from its corpus and the principles' asks)."""
    from bot.knowledge.embedder import shared_embedder

    if only in (None, "detectors"):
        _train_detectors(ctx.settings)
    if only in (None, "ask"):
        from bot.knowledge.ask_training import train_from_knowledge, write_ask_training

        directory = ctx.settings.knowledge_dir / "ask"
        result = train_from_knowledge(ctx.settings.knowledge_dir, shared_embedder(), progress=click.echo)
        write_ask_training(result, directory)
        for line in result.figures.lines():
            click.echo(line)
        principles = len(result.weights.principles)
        click.echo(f"ask's question reader trained over {principles} principles; written to {directory}")


def _train_detectors(settings: Settings) -> None:
    from bot.core.lexicon import load_lexicons
    from bot.knowledge.embedder import shared_embedder
    from bot.knowledge.training import (
        load_corpus,
        load_training_settings,
        train_detectors,
        write_training,
    )

    directory = settings.knowledge_dir / "detectors"
    languages = set(load_lexicons(settings.knowledge_dir / "rules" / "lexicons"))
    units = load_corpus(directory, languages)
    result = train_detectors(units, shared_embedder(), load_training_settings(directory), progress=click.echo)
    write_training(result, directory)
    trained = len(result.weights.categories)
    click.echo(f"{trained} detectors trained on {result.units} units; written to {directory}")


@kb.command("list")
@click.option("--lang", type=LANG_CHOICE, default=None)
@pass_context
def kb_list(ctx: _Context, lang: str | None) -> None:
    """List the principles (id, title, languages)."""
    from bot.knowledge.principles import PrincipleStore

    store = PrincipleStore.load(ctx.settings.knowledge_dir / "principles")
    table = Table("id", "title", "languages")
    for pid in store.ids:
        principle = store.get(pid, lang or ctx.settings.language)
        languages = sorted(p.lang for p in store.all() if p.id == pid)
        table.add_row(pid, principle.title if principle else "", ", ".join(languages))
    Console().print(table)


@cli.command("eval")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled openers (JSONL); default every tests/data/openers*.jsonl set.",
)
@click.option(
    "--misses",
    is_flag=True,
    help="List every opener whose findings differ from its labels (never for a *blind* set).",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a figure of openers.jsonl is below the bar.")
@pass_context
def eval_command(ctx: _Context, data_path: Path | None, misses: bool, strict: bool) -> None:
    """Quality figures on the project's labelled openers and questions."""
    from bot.evaluation import evaluate, load_labelled

    data_dir = Path(__file__).resolve().parent.parent / "tests" / "data"
    paths = [data_path] if data_path is not None else sorted(data_dir.glob("openers*.jsonl"))
    for path in paths:
        if not path.is_file():
            raise BadInput(f"no evaluation set at {path}")
    console = Console()
    reports = {path: evaluate(ctx.coach, load_labelled(path)) for path in paths}
    if data_path is not None:
        _category_table(console, data_path.name, reports[data_path])
    _opener_summary(console, reports)
    own_ok = True
    for path, report in reports.items():
        if path.name == "openers.jsonl" or data_path is not None:
            own_ok = own_ok and all(report.passed().values())
        if misses and "blind" not in path.name:
            for line in report.misses:
                console.print(f"[dim]{path.name} {line}[/dim]")
    retrieval_ok = True
    if data_path is None and ctx.with_search:
        retrieval_ok = _retrieval_figures(console, ctx.coach, data_dir, misses)
    if strict and not (own_ok and retrieval_ok):
        sys.exit(1)


def _category_table(console: Console, name: str, report: EvalReport) -> None:
    title = f"{name}: {report.items} openers"
    table = Table("category", "precision", "recall", "tp", "fp", "fn", title=title)
    for category, figures in report.per_category.items():
        table.add_row(
            category,
            f"{figures.precision:.2f}",
            f"{figures.recall:.2f}",
            str(figures.tp),
            str(figures.fp),
            str(figures.fn),
        )
    console.print(table)


def _opener_summary(console: Console, reports: dict[Path, EvalReport]) -> None:
    """One line per set. The bars (recall 0.90, precision 0.92, false alarms 5 %, AUC 0.97
    and 0.85, language 100 %) are the targets of the diagnosis; a finding is right when it
    is expected or acceptable."""
    from bot.evaluation import THRESHOLDS

    table = Table(
        title="diagnosis (tests/data/openers*.jsonl): bars "
        f"P>={THRESHOLDS['precision']} R>={THRESHOLDS['recall']} FA<={THRESHOLDS['false_alarm_rate']} "
        f"AUC>={THRESHOLDS['auc']} mixed AUC>={THRESHOLDS['auc_mixed']}",
        box=box.SIMPLE_HEAD,
    )
    for column in (
        "set",
        "n",
        "precision",
        "recall",
        "AUC\nstrong>weak",
        "AUC\nmixed>weak",
        "false alarms\non strong",
        "language",
        "right findings\nrule/model",
    ):
        table.add_column(column, justify="left" if column == "set" else "right", no_wrap=True)
    for path, report in reports.items():
        table.add_row(
            path.stem.removeprefix("openers").lstrip("_") or "own",
            str(report.items),
            f"{report.precision:.3f}",
            f"{report.recall:.3f}",
            f"{report.auc:.3f}",
            "-" if report.auc_mixed is None else f"{report.auc_mixed:.3f}",
            f"{report.false_alarm_rate:.3f}",
            f"{report.language_accuracy:.3f}",
            f"{report.by_source.get('rule', 0)}/{report.by_source.get('model', 0)}",
        )
    console.print(table)


def _retrieval_figures(console: Console, coach: Coach, data_dir: Path, misses: bool) -> bool:
    """`ask` figures on every question set; True when `questions.jsonl` (the set the
    acceptance bars are written for) passes. A `*blind*` set is only measured: listing
    its misses would let its questions leak into the tuning."""
    from bot.evaluation import evaluate_retrieval, load_questions

    paths = sorted(data_dir.glob("questions*.jsonl"))
    if not paths:
        return True
    table = Table(
        title="ask (tests/data/questions*.jsonl; own = questions.jsonl): bars same top 0.85, "
        "top 3 0.95 per language, on-topic answered 0.95, off-topic refused 0.90, write requests 1.00",
        box=box.SIMPLE_HEAD,
    )
    for column in (
        "set",
        "n",
        "same top\nFR=EN",
        "top 3\nen/fr",
        "first\nen/fr",
        "on-topic\nanswered",
        "off-topic\nrefused",
        "near/far\nrefused",
        "write requests\nexplained",
    ):
        table.add_column(column, justify="left" if column == "set" else "right", no_wrap=True)
    own_ok = True
    listed: list[str] = []

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for questions_path in paths:
        report = evaluate_retrieval(coach, load_questions(questions_path))
        if questions_path.name == "questions.jsonl":
            own_ok = all(report.passed().values())
        near_far = "-"
        if report.offtopic_refusal_near is not None or report.offtopic_refusal_far is not None:
            near_far = f"{figure(report.offtopic_refusal_near)}/{figure(report.offtopic_refusal_far)}"
        table.add_row(
            questions_path.stem.removeprefix("questions").lstrip("_") or "own",
            str(report.questions),
            figure(report.cross_lingual_agreement),
            "/".join(f"{value:.2f}" for value in report.recall_at_3.values()) or "-",
            "/".join(f"{value:.2f}" for value in report.recall_at_1.values()) or "-",
            figure(report.ontopic_answered),
            figure(report.offtopic_refusal),
            near_far,
            figure(report.write_requests_met),
        )
        if misses and "blind" not in questions_path.name:
            listed += [f"{questions_path.name} {line}" for line in report.misses]
    console.print(table)
    for line in listed:
        console.print(f"[dim]{line}[/dim]")
    return own_ok


REPORT_DAYS = 28
CHANNELS = ("telegram", "slack", "terminal")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_day(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    if not _ISO_DAY.fullmatch(value.strip()):
        raise BadInput(f"{option}: expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInput(f"{option}: {value!r} is not a valid date ({exc})") from None


def _report_period(since: str | None, until: str | None, today: date) -> tuple[datetime, datetime]:
    """Whole UTC days, both included (`--until 2025-03-31` covers the 31st); by default the
    last REPORT_DAYS days, today included. Returns [start, end) as datetimes."""
    first = _parse_day("--since", since)
    last = _parse_day("--until", until) or today
    if first is None:
        first = last - timedelta(days=REPORT_DAYS - 1)
    if first > last:
        raise BadInput(f"--since ({first.isoformat()}) is after --until ({last.isoformat()})")
    return (
        datetime.combine(first, time(), tzinfo=UTC),
        datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC),
    )


async def _team_data(
    settings: Settings, since: datetime, until: datetime
) -> tuple[list[CardRecord], set[tuple[str, str]], list[PracticeRecord]]:
    store = await open_store(settings)
    try:
        cards, consenting = await store.cards_between(since, until), await store.consenting_users()
        return cards, consenting, await store.practice_between(since, until)
    finally:
        await store.close()


@cli.command()
@click.option(
    "--since",
    metavar="DATE",
    help=f"First day, YYYY-MM-DD (default: the last {REPORT_DAYS} days, today included).",
)
@click.option("--until", metavar="DATE", help="Last day included, YYYY-MM-DD (default: today).")
@click.option("--lang", type=LANG_CHOICE, help="Report language (default: FOURNIL_LANGUAGE).")
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the chart (phone-sized PNG) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report's figures as JSON.")
@pass_context
def report(
    ctx: _Context, since: str | None, until: str | None, lang: str | None, png: Path | None, as_json: bool
) -> None:
    """The anonymous team report over a period: only reps who opted in are named."""
    from bot.core.report import build_team_report, load_report_strings, render_team_report, share_labels

    start, end = _report_period(since, until, datetime.now(UTC).date())
    language = lang or ctx.settings.force_language or ctx.settings.language
    strings = load_report_strings(ctx.settings.prompts_dir / "report")[language]
    cards, consenting, practice = asyncio.run(_team_data(ctx.settings, start, end))
    team = build_team_report(cards, start, end, share_labels(consenting), practice)
    if as_json:
        click.echo(team.model_dump_json())
    else:
        Console().print(terminal_markdown(render_team_report(team, strings)))
    if png is not None:
        from bot.report_chart import render_report_png

        try:
            png.write_bytes(render_report_png(team, strings))
        except OSError as exc:
            raise BadInput(f"cannot write {png}: {exc.strerror}") from None
        click.echo(f"chart written to {png}", err=as_json)


async def _forget(settings: Settings, user: str, channels: tuple[str, ...]) -> dict[str, int]:
    store = await open_store(settings)
    try:
        return {channel: await store.forget_user(channel, user) for channel in channels}
    finally:
        await store.close()


@cli.command()
@click.argument("user")
@click.option("--channel", type=click.Choice(CHANNELS), help="Only in this channel (default: every channel).")
@pass_context
def forget(ctx: _Context, user: str, channel: str | None) -> None:
    """Delete everything stored about USER (a Slack or Telegram user id, or a terminal login)."""
    if not user.strip():
        raise BadInput("USER is empty: give the id of the user to forget")
    counts = asyncio.run(_forget(ctx.settings, user, (channel,) if channel else CHANNELS))
    detail = ", ".join(f"{name} {count}" for name, count in counts.items())
    click.echo(f"forgot {user}: {sum(counts.values())} row(s) deleted or anonymised ({detail})")


def _accept_no_search(group: click.Group) -> None:
    """Every command takes `--no-search` after its name too (`fournil coach --no-search …`),
    as well as before it (`fournil --no-search coach …`); and `--no-llm` alike."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_no_search(command)
        elif not any(param.name == "no_search" for param in command.params):
            command.params.append(
                click.Option(
                    ["--no-search"],
                    is_flag=True,
                    expose_value=False,
                    callback=_no_search,
                    help=NO_SEARCH_HELP,
                )
            )
        if not isinstance(command, click.Group) and not any(p.name == "no_llm" for p in command.params):
            command.params.append(  # `--no-llm` the same way
                click.Option(
                    ["--no-llm"], is_flag=True, expose_value=False, callback=_no_llm, help=NO_LLM_HELP
                )
            )


from bot.practice_cli import practice  # noqa: E402  (its own module; uses the context above)

cli.add_command(practice)
_accept_no_search(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", code=130)
    except click.exceptions.ClickException as exc:
        _fail(exc.format_message())
    except (BadInput, InvalidOpener) as exc:
        _fail(str(exc))
    except FournilError as exc:
        _fail(with_setting_origin(str(exc)), code=1)
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    except SystemExit:
        raise
    except Exception as exc:  # the user gets one line, never a traceback
        log.debug("unexpected failure", exc_info=True)
        _fail(_operator_error(exc) or f"internal error: {type(exc).__name__}: {exc}", code=1)


def _operator_error(exc: Exception) -> str | None:
    """The one line for a data dir or database that fails while a command runs (they are
    checked when opened, but a disk can fill up or a file go read-only later)."""
    try:
        settings = load_settings()
    except ValidationError:
        return None
    if isinstance(exc, OSError) and not _within(exc.filename, settings.data_dir):
        return None  # a broken pipe, a file named on the command line: not the data dir
    error = store_error(settings, exc)
    return with_setting_origin(str(error)) if error is not None else None


def _within(filename: object, directory: Path) -> bool:
    if not isinstance(filename, str | Path):
        return False
    return Path(filename).resolve().is_relative_to(directory.resolve())
