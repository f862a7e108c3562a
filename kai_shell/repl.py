"""``kai-shell``: the interactive chat client (prompt-toolkit on top of the trio core).

How trio and prompt-toolkit live together
-----------------------------------------
prompt-toolkit runs on asyncio, the core on trio. Trio owns the main thread
and the program: the session, the client, the log, the renderer and every
command run as trio code. Only the *blocking* ``PromptSession.prompt()``
call runs elsewhere, in a worker thread through ``trio.to_thread.run_sync``,
where prompt-toolkit starts its own short-lived asyncio loop for the
duration of one prompt -- the way ``python -m trio``'s REPL runs its console.
We chose this over trio guest mode on an asyncio host because:

* nothing but the prompt touches asyncio: no second scheduler under the
  core, no cross-loop cancellation, and the core's tests and the shell run
  exactly the same trio code;
* the prompt and the stream never run at the same time (the shell is a
  turn-based conversation), so one thread handing over to the other is all
  the concurrency needed; the toolbar and the completer, which do run in
  the prompt thread, read only a snapshot state (see :mod:`.shell.state`)
  and never the log or the network, so typing is never blocked;
* Ctrl-C has one clear meaning in each phase. At the prompt the terminal is
  in raw mode, Ctrl-C is a key, and the key binding clears the line. While
  an answer streams the terminal is in cooked mode and Ctrl-C is SIGINT:
  a task holds ``trio.open_signal_receiver(SIGINT)`` for the whole shell
  and cancels the cancel scope of the answer (or replay) that is running.
  The stream closes, the client logs ``cancelled`` and what arrived stays
  rendered and logged; the shell itself is never interrupted.

A background task (in the shell's nursery, no hidden threads) connects to the
server so the prompt opens at once, offline until the server answers;
another refreshes the cached chat list completion reads.

On a terminal, the very first prompt comes earlier still: ``kai-shell``
shows it in the main thread before trio is imported, while one thread
imports this module and the rest, and the shell takes over the same
prompt and runs the first line (:mod:`.shell.early`, :mod:`.shell.launch`).
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import aclosing, contextmanager, nullcontext
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO

import trio

from kai_core.events import ApprovalDecisionEvent, Event, ToolApprovalRequestEvent
from kai_core.exceptions import KaiConnectionError, KaiError, KaiTimeoutError
from kai_core.policy import AnswerInfo, ApprovalDecision, ApprovalRequest, VoteDecision
from kai_core.sanitize import for_terminal

from .runtime import Runtime, UsageError
from .shell.answer import Deferred, RunningAnswer
from .shell.approval import APPROVAL_HELP, ApprovalPrompt, describe_request, parse_reply
from .shell.builtins import BUILTINS
from .shell.commands import ShellCommand
from .shell.context import ShellContext
from .shell.early import EarlyPrompt, greet, new_chat_id, wants_color
from .shell.keys import QUIT_HINT
from .shell.prompt import build_prompt
from .shell.state import ChatEntry, ShellState
from .shell.terminal import keys_not_echoed
from .shell.theme import LINE_COLORS, choose_theme

if TYPE_CHECKING:
    from prompt_toolkit.history import History
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from kai_core.client import KaiClient
    from kai_core.log import EventLog
    from kai_core.session import Session

    from .converse import AnswerRenderer

__all__ = ["Shell", "run_shell", "run_shell_async"]

CONNECT_WAIT = 15.0  # seconds a message waits for a connection still being made
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between attempts to reach the server (doubling)
CHAT_CACHE_SIZE = 500  # chats offered by completion
_INTERRUPTED = "\x00interrupted"  # what the prompt thread returns for Ctrl-C

_RESET = "\x1b[0m"


class Shell:
    """One interactive shell on a :class:`Runtime` (options, plugins, log, client).

    :param chat_id: the chat to continue; a new one when None.
    :param offline: do not connect to the server at all.
    :param input: prompt-toolkit input (tests pass a pipe); None = the terminal.
    :param output: prompt-toolkit output (tests pass ``DummyOutput``).
    :param stream: where answers and command output go (default ``sys.stdout``).
    :param history: the prompt history (default: the history file).
    :param handle_sigint: own SIGINT while the shell runs (needs the main thread).
    :param welcome: lines shown after the greeting (``kai demo``'s things to try).
    :param early: kai-shell's first prompt, already showing (:mod:`.shell.early`):
        the shell goes on with its state, commands and prompt session, and
        runs the line typed there instead of greeting again.

    Commands (built-in and plugins') get this object, as a
    :class:`~kai_shell.shell.context.ShellContext`: :meth:`echo`, :meth:`warn`,
    :meth:`error`, :meth:`send`, :attr:`client` (None while offline),
    :attr:`log` (None with ``--no-log``), :attr:`session`, :attr:`state`, ...
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        chat_id: str | None = None,
        offline: bool = False,
        input: Input | None = None,
        output: Output | None = None,
        stream: TextIO | None = None,
        history: History | None = None,
        handle_sigint: bool = True,
        welcome: str | None = None,
        early: EarlyPrompt | None = None,
    ) -> None:
        self.runtime = runtime
        self.out: TextIO = early.out if early else stream or sys.stdout
        self.color = wants_color(self.out)
        self.theme = choose_theme(runtime.options.theme)
        self.welcome = welcome
        self.offline_only = offline
        self.handle_sigint = handle_sigint
        self._early = early
        if early is not None:
            self.state = early.state  # the prompt already showing reads this one
        else:
            self.state = ShellState(chat_id=chat_id or new_chat_id())
            self.state.server = "offline" if offline else "connecting"
            self.state.server_note = "--offline" if offline else ""
        if runtime.report is None:
            runtime.report = self.warn
        self.client: KaiClient | None = None
        self.session: Session | None = None
        self.log: EventLog | None = self._open_log()
        if early is not None:
            self.registry = early.registry  # the prompt's completer reads this one
            self.registry.take(BUILTINS)
        else:
            self.registry = BUILTINS.copy()
        self._add_plugin_commands()
        self.renderer = self._make_renderer()
        if early is not None:
            self.prompt = early.prompt
        else:
            self.prompt = build_prompt(
                self.registry,
                self.state,
                history=history,
                input=input,
                output=output,
                theme=self.theme,
            )
        self._input, self._output = input, output
        self._scope: trio.CancelScope | None = None
        self._answer: RunningAnswer | None = None  # the answer streaming or parked
        self._connected = trio.Event()  # the first attempt to connect has ended
        self._attempted = trio.Event()  # set (and replaced) as each attempt ends
        self._retry_now = trio.Event()  # a message, /ping or /reconnect wants a try now
        self._retrying = False  # a connection loop runs (not --offline, a token given)
        self._nursery: trio.Nursery | None = None
        self._predecided: dict[str, ApprovalDecision] = {}
        self.quitting = False

    # -- setting up --------------------------------------------------------------

    @cached_property
    def approval_prompt(self) -> ApprovalPrompt:
        """The short prompt for approvals and questions (made when first asked:
        most shells never need it, and a prompt-toolkit session costs ~25 ms)."""
        return ApprovalPrompt(self.registry, self.state, input=self._input, output=self._output)

    def _open_log(self) -> EventLog | None:
        try:
            return self.runtime.log
        except KaiError as exc:
            self.error(f"{exc} (recording is off for this shell)")
            self.runtime.options.no_log = True
            return None

    def _add_plugin_commands(self) -> None:
        for plugin, commands in self.runtime.plugins.call_each("kai_shell_commands"):
            for command in commands if isinstance(commands, list | tuple) else [commands]:
                if not isinstance(command, ShellCommand):
                    self.warn(f"plugin {plugin!r} offered {command!r}, not a ShellCommand")
                    continue
                command.source = plugin
                try:
                    self.registry.add(command)
                except ValueError as exc:
                    self.warn(f"plugin {plugin!r}: {exc}; its command is ignored")

    def _make_renderer(self) -> AnswerRenderer:
        from kai_core.render import GuardedRenderer
        from kai_plugins.renderers.plain import PlainRenderer

        try:
            inner = self.runtime.renderer(self.out)
        except UsageError as exc:
            self.warn(f"{exc}; using plain")
            inner = PlainRenderer(self.out, color=self.color)
        from .converse import AnswerRenderer

        guarded = GuardedRenderer(
            inner, self.warn, fallback=PlainRenderer(self.out, color=self.color)
        )
        return AnswerRenderer(guarded)

    # -- output ------------------------------------------------------------------

    def styled(self, text: str, style: str | None = None, *, safe: bool = False) -> None:
        """Print a line in a style (``warn``, ``error``, ``dim``, ``user``) when colors are on.

        The text is made safe for the terminal (it often quotes the server);
        ``safe=True`` says it already is, and its escape sequences are ours.
        """
        if not safe:
            text = for_terminal(text, multiline=True)
        if style and self.color:
            text = f"{LINE_COLORS[self.theme][style]}{text}{_RESET}"
        self.out.write(text + "\n")
        self.out.flush()

    def echo(self, text: str = "", *, safe: bool = False) -> None:
        """Print a line of command output (``safe``: see :meth:`styled`)."""
        self.styled(text, safe=safe)

    def dim(self, text: str) -> None:
        """Print a line of secondary information."""
        self.styled(text, "dim")

    def warn(self, text: str) -> None:
        """Print a warning line."""
        self.styled(text, "warn")

    def error(self, text: str) -> None:
        """Print an error as one line: ``error: ...``."""
        self.styled(f"error: {text}", "error")

    def invalidate(self) -> None:
        """Redraw the prompt (toolbar) if one is showing; safe from the trio thread."""
        app = self.prompt.app
        loop = app.loop  # the prompt thread's asyncio loop, while a prompt runs
        if app.is_running and loop is not None:
            # Hand the redraw to the prompt's own loop: called from the trio
            # thread, app.invalidate() would look for a loop here. A prompt
            # that is just closing makes this a no-op; the next one redraws.
            try:
                loop.call_soon_threadsafe(app.invalidate)
            except RuntimeError:
                pass

    # -- running -----------------------------------------------------------------

    async def run(self) -> None:
        """Prompt, dispatch, repeat, until Ctrl-D or ``/quit``."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.handle_sigint:
                await nursery.start(self._watch_sigint)
            if self.offline_only:
                self._connected.set()
            elif not self.runtime.options.resolved_token():
                # known at once: say so before the first prompt, not in a redraw
                self._set_offline("no Storage API token")
                self._connected.set()
            else:
                self._retrying = True
                nursery.start_soon(self._connection)
            self.refresh_chats()
            if self._early is None:
                greet(self.state, self.welcome, self.styled)
            elif self._early.interrupted:
                self.warn("stopped (Ctrl-C) before it ran: the first line is in the history (Up)")
            elif self._early.first_line is not None:
                await self.handle(self._early.first_line)
            while not self.quitting:
                line = await self._read_line()
                if line is None:
                    break
                await self.handle(line)
            nursery.cancel_scope.cancel()
        self._nursery = None

    async def _read_line(self) -> str | None:
        """The next line typed; None at Ctrl-D."""

        def prompt() -> str | None:
            try:
                return self.prompt.prompt()
            except KeyboardInterrupt:  # Ctrl-C on an empty line (see keys.py)
                return _INTERRUPTED
            except EOFError:
                return None

        while True:
            line = await trio.to_thread.run_sync(prompt)
            if line is _INTERRUPTED:
                self.dim(QUIT_HINT)
                continue
            return line

    async def _watch_sigint(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                self.interrupt()

    def interrupt(self) -> None:
        """Stop what is running (an answer, a replay); the shell goes on."""
        if self._scope is not None:
            self._scope.cancel()

    @contextmanager
    def interruptible(self, what: str) -> Iterator[trio.CancelScope]:
        """A cancel scope Ctrl-C cancels; the toolbar shows ``what`` meanwhile."""
        echo_off = keys_not_echoed() if self._input is None else nullcontext()
        with trio.CancelScope() as scope, echo_off:
            self._scope, self.state.busy = scope, what
            try:
                yield scope
            finally:
                self._scope, self.state.busy = None, None

    async def handle(self, line: str) -> None:
        """Run one typed line: a ``/command`` or a message. Never raises (but Cancelled)."""
        text = line.strip()
        if not text:
            return
        try:
            if text.startswith("/") and not text.startswith("//"):
                await self._command(text)
            else:
                await self.send(text.removeprefix("/"))
        except KaiError as exc:
            self._server_error(exc)
        except UsageError as exc:
            self.error(str(exc))
        except Exception as exc:  # a bug, maybe a plugin's: one line, the shell goes on
            leaves = _leaves(exc)
            if all(isinstance(leaf, KaiError) for leaf in leaves):
                # a server error that came out of a nursery, wrapped in a group
                self._server_error(leaves[0])  # type: ignore[arg-type]
            else:
                self.error(f"{type(leaves[0]).__name__}: {leaves[0]}")
            if self.runtime.options.debug:
                self.echo(traceback.format_exc())

    async def _command(self, text: str) -> None:
        command, name, args = self.registry.parse(text)
        if command is None:
            close = self.registry.suggest(name)
            hint = f" (did you mean /{close}?)" if close else " (/help lists them)"
            self.error(f"unknown command /{name}{hint}")
            return
        if command.needs_server and not await self.require_client(f"/{command.name}"):
            return
        with self.interruptible(f"/{command.name}") as scope:
            await command.run(self, args)
        if scope.cancelled_caught:
            self.warn(f"/{command.name} stopped")

    # -- the server ----------------------------------------------------------------

    async def _connection(self) -> None:
        """Connect, and hold the client open until the shell ends.

        While the server cannot be reached, try again after 1, 2, 4 ... 30
        seconds, or at once when a message, ``/ping`` or ``/reconnect`` asks
        (:meth:`reconnect`). A configuration problem (no URL) is not retried.
        """
        delay = RETRY_FIRST
        while True:
            try:
                async with self.runtime.client() as client:
                    self.client = client
                    self._new_session(self.state.chat_id)
                    self.state.server_note = _describe(client)
                    await self.check_server()
                    self._attempt_ended()
                    if self.client is not None:
                        self._nursery_start(self._load_tool_names)
                    await trio.sleep_forever()
            except UsageError as exc:
                self._set_offline(str(exc).split(":")[0])
                self._retrying = False
                return
            except KaiError as exc:
                self._set_offline(_short_error(exc))
            finally:
                self.client = None
                self.session = None
                self._attempt_ended()
            with trio.move_on_after(delay):
                await self._retry_now.wait()
            self._retry_now = trio.Event()
            delay = min(delay * 2, RETRY_MAX)

    def _attempt_ended(self) -> None:
        self._connected.set()
        ended, self._attempted = self._attempted, trio.Event()
        ended.set()

    async def reconnect(self) -> bool:
        """Try to reach the server now, if the shell is offline; True when connected."""
        if self.client is not None:
            return True
        if not self._retrying:
            return False
        attempt = self._attempted
        self.state.server = "connecting"
        self.invalidate()
        self._retry_now.set()
        with trio.move_on_after(CONNECT_WAIT):
            await attempt.wait()
        return self.client is not None

    def _set_offline(self, why: str) -> None:
        self.state.server, self.state.server_note = "offline", why
        self.invalidate()

    def _set_online(self) -> None:
        if self.client is not None:
            self.state.server, self.state.server_note = "online", _describe(self.client)
            self.invalidate()

    async def check_server(self) -> float | None:
        """Ping the server; update the toolbar; the round trip in seconds, or None."""
        if self.client is None:
            return None
        started = time.monotonic()
        try:
            await self.client.ping()
        except KaiError as exc:
            self._set_offline(_short_error(exc))
            return None
        self._set_online()
        return time.monotonic() - started

    async def _load_tool_names(self) -> None:
        if self.client is None:
            return
        try:
            tools = await self.client.get_tools()
        except Exception:  # only for completion; the server may not offer it
            return
        self.state.add_tool_names(*(tool.name for tool in tools.tools))

    async def require_client(self, what: str) -> bool:
        """True when connected (waiting briefly for a connection being made); else says why not."""
        if self.client is None and not self._connected.is_set():
            with trio.move_on_after(CONNECT_WAIT):
                await self._connected.wait()
        if self.client is None:
            await self.reconnect()
        if self.client is None or self.session is None:
            self.error(
                f"{what} needs the server, and the shell is offline ({self.state.server_note})"
            )
            return False
        return True

    def _server_error(self, exc: KaiError) -> None:
        if isinstance(exc, KaiConnectionError | KaiTimeoutError):
            self._set_offline(_short_error(exc))
        self.error(str(exc))

    def _nursery_start(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # -- chats -------------------------------------------------------------------

    def _new_session(self, chat_id: str | None) -> None:
        if self.client is None:
            return
        self.session = self.runtime.session(
            self.client,
            chat_id=chat_id,
            ask=self.ask_approval,
            ask_vote=self.ask_vote if self.runtime.options.vote else None,
        )

    def switch_chat(self, chat_id: str, title: str | None = None) -> None:
        """Make ``chat_id`` the current chat (new session, no pending approvals)."""
        if self._answer is not None and self._answer.parked:
            self._answer.scope.cancel()  # its decision is not wanted any more
        self.state.new_chat(chat_id, title)
        self._predecided.clear()
        self._new_session(chat_id)
        self.invalidate()

    def new_chat(self) -> str:
        """Start a new chat; its id."""
        chat_id = new_chat_id()
        self.switch_chat(chat_id)
        self.state.tokens_in = self.state.tokens_out = 0
        return chat_id

    def refresh_chats(self) -> None:
        """Refresh the cached chat list (for completion) in the background."""
        self._nursery_start(self._refresh_chats)

    async def _refresh_chats(self) -> None:
        log = self.log
        if log is None:
            return
        try:
            chats = await trio.to_thread.run_sync(lambda: log.chats(limit=CHAT_CACHE_SIZE))
        except Exception as exc:  # only completion suffers: never end the shell over it
            self.warn(f"cannot read the chat list: {type(exc).__name__}: {exc}")
            return
        self.state.chats = tuple(ChatEntry(c.id, c.title, c.last_ts) for c in chats)
        if self.state.chat_title is None and self.state.chat_id:
            self.state.chat_title = self.state.title_of(self.state.chat_id)
        self.invalidate()

    def resolve_chat(self, word: str) -> str | None:
        """A chat id from what was typed: an id, a unique id prefix, or a unique title match."""
        word = word.strip()
        if not word:
            return None
        if word in (".", "current"):
            return self.state.chat_id
        ids = [c.id for c in self.state.chats]
        if word in ids:
            return word
        prefixed = [i for i in ids if i.startswith(word)]
        if len(prefixed) == 1:
            return prefixed[0]
        titled = [c.id for c in self.state.chats if c.title and word.lower() in c.title.lower()]
        if not prefixed and len(titled) == 1:
            return titled[0]
        if len(prefixed) > 1 or len(titled) > 1:
            raise UsageError(f"{word!r} matches several chats; type more of the id (TAB completes)")
        return word  # not known locally: maybe the server knows it

    # -- talking -----------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Send a message in the current chat and render the answer as it streams."""
        if not await self.require_client("sending a message"):
            # Not lost: it is in the prompt's history (not pre-filled at the
            # prompt, where keys typed ahead would be appended to it).
            self.dim("(not sent: Up brings it back to send it again)")
            return
        assert self.session is not None
        session = self.session
        if self.state.chat_title is None:
            self.state.chat_title = text.splitlines()[0][:60]
        await self._render_stream(text, session.stream(text))

    async def _render_stream(self, text: str | None, opened: Any) -> None:
        """Render the events of an ``async with``-able stream; Ctrl-C stops it.

        The stream runs in a task of the shell's nursery (see
        :mod:`.shell.answer`), so that an answer waiting for a decision the
        user put off can park while the prompt is back.
        """
        await self.drop_parked_answer()
        self.state.begin_answer()
        self.renderer.begin(text)
        if self._nursery is None:  # run() is not running: the answer cannot outlive us
            async with trio.open_nursery() as nursery:
                answer = RunningAnswer(can_park=False)
                nursery.start_soon(self._stream_answer, answer, opened)
                await self._follow(answer)
            return
        answer = RunningAnswer(can_park=True)
        self._answer = answer
        self._nursery.start_soon(self._stream_answer, answer, opened)
        await self._follow(answer)

    async def _stream_answer(self, answer: RunningAnswer, opened: Any) -> None:
        with answer.scope:
            try:
                async with opened as events:
                    async for event in events:
                        self._on_event(event)
            except Exception as exc:  # reported by the follower, as if raised there
                answer.error = exc
            finally:
                self.renderer.end()
                self.state.end_answer()
                self._sync_pending()
                if self._answer is answer:
                    self._answer = None
                answer.finish()

    async def _follow(self, answer: RunningAnswer) -> None:
        """Wait until the answer ends or parks; Ctrl-C meanwhile stops it."""
        saved = self._scope, self.state.busy
        self._scope, self.state.busy = answer.scope, "answering"
        try:
            with keys_not_echoed() if self._input is None else nullcontext():
                await answer.settled()
        finally:
            self._scope, self.state.busy = saved
        if answer.parked:
            return
        stopped = answer.scope.cancelled_caught
        if stopped:
            self.warn("stopped (Ctrl-C); what arrived is kept in the log")
        if isinstance(answer.error, KaiError):
            self._server_error(answer.error)
        elif answer.error is not None:
            raise answer.error
        elif not stopped:
            self._set_online()
        self.refresh_chats()

    async def drop_parked_answer(self) -> None:
        """Stop an answer left waiting for a put-off decision (a new message replaces it)."""
        answer = self._answer
        if answer is not None and answer.parked:
            answer.scope.cancel()
            await answer.settled()

    async def _put_off(self, request: ApprovalRequest) -> ApprovalDecision:
        """Ctrl-C at the approval question: park the answer, back to the prompt,
        and wait there for ``/approve`` or ``/deny``."""
        answer = self._answer
        deferred = Deferred(request.tool_name)
        assert answer is not None
        self.renderer.end()
        self._sync_pending()
        self.warn(
            f"{request.tool_name} waits for your decision: /approve or /deny "
            f"{request.tool_call_id}; the answer goes on then (a new message drops it)"
        )
        answer.park(request.tool_call_id, deferred)
        decision = await deferred.wait()
        self.renderer.begin(None)
        return decision

    async def settle_put_off(self, tool_call_id: str, decision: ApprovalDecision) -> bool:
        """Give a put-off decision to its parked answer and follow the answer again.

        :returns: False when no parked answer waits for ``tool_call_id``.
        """
        answer = self._answer
        if answer is None or not answer.settle(tool_call_id, decision):
            return False
        await self._follow(answer)
        return True

    def _on_event(self, event: Event) -> None:
        self.state.see(event)
        self.renderer.event(event)
        if isinstance(event, ToolApprovalRequestEvent | ApprovalDecisionEvent):
            self._sync_pending()

    def _sync_pending(self) -> None:
        pending = dict(self.session.pending) if self.session is not None else {}
        self.state.set_pending(pending)
        self.invalidate()

    # -- approvals -----------------------------------------------------------------

    async def ask_approval(self, request: ApprovalRequest) -> ApprovalDecision | None:
        """The session's ``ask``: no policy decided, so ask the user inline."""
        early = self._predecided.pop(request.tool_call_id, None)
        if early is not None:
            self.dim(f"{request.tool_name}: using your earlier decision")
            return early
        self._sync_pending()
        self.echo(describe_request(request.tool_name, request.tool_call_id, request.input))
        while True:
            try:
                line = await trio.to_thread.run_sync(self.approval_prompt.read, request.tool_name)
            except KeyboardInterrupt:
                if self._answer is not None and self._answer.can_park:
                    # Put off: the answer waits (its stream open) for /approve, /deny.
                    return await self._put_off(request)
                # No parking here: Ctrl-C stops the answer; the call stays pending.
                self.interrupt()
                await trio.lowlevel.checkpoint()
                raise AssertionError("unreachable: the answer's scope was cancelled") from None
            except EOFError:
                return ApprovalDecision.reject("no answer (end of input)", decided_by="user")
            pending = [p.tool_call_id for p in self.state.pending]
            reply = parse_reply(line, request.tool_call_id, pending)
            if reply.kind == "decide":
                return ApprovalDecision(
                    approved=reply.approved, reason=reply.reason, decided_by="user"
                )
            if reply.kind == "other" and reply.tool_call_id:
                self._predecided[reply.tool_call_id] = ApprovalDecision(
                    approved=reply.approved, reason=reply.reason, decided_by="user"
                )
                verdict = "approve" if reply.approved else "deny"
                self.dim(f"will {verdict} {reply.tool_call_id} when it is asked")
            elif reply.kind == "help":
                self.dim(APPROVAL_HELP)
            else:
                self.warn(reply.message)

    async def ask_vote(self, answer: AnswerInfo) -> VoteDecision | None:
        """The session's ``ask_vote`` (with ``--vote``): u, d or Enter to skip."""
        question = "Vote on this answer? [u/d/Enter to skip] "
        self.renderer.end()  # finish drawing the answer before asking about it
        reply = (await trio.to_thread.run_sync(self.approval_prompt.ask, question)).strip()
        if reply.lower() in ("u", "up", "+"):
            return VoteDecision.up()
        if reply.lower() in ("d", "down", "-"):
            return VoteDecision.down()
        return None

    async def confirm(self, question: str) -> bool:
        """Ask a y/N question at the prompt (Ctrl-C or Enter is no)."""
        reply = await trio.to_thread.run_sync(self.approval_prompt.ask, f"{question} [y/N] ")
        return reply.strip().lower() in ("y", "yes")

    async def decide_pending(self, tool_call_id: str, decision: ApprovalDecision) -> None:
        """Answer a pending tool call: give the decision to its parked answer, or,
        when its answer was stopped, have the session answer it
        (:meth:`kai_core.session.Session.decide_pending`) and render what follows."""
        if await self.settle_put_off(tool_call_id, decision):
            return
        session = self.session
        assert session is not None
        request = session.pending[tool_call_id]
        await self._render_stream(None, aclosing(session.decide_pending(tool_call_id, decision)))
        if request.transport == "agent":
            self.dim(f"{request.tool_name}: answer sent; the server goes on with the answer")
            return
        waiting = [i for i, r in session.pending.items() if r.transport == "v6"]
        if waiting:
            self.dim(f"still to decide before the answer goes on: {', '.join(waiting)}")

    async def render_stream(self, text: str | None, opened: Any) -> None:
        """Render the events of an ``async with``-able event stream like an answer."""
        await self._render_stream(text, opened)


_SHELL_IS_A_COMMAND_CONTEXT: type[ShellContext] = Shell
"""Checked by mypy: ``Shell`` gives its commands all :class:`ShellContext` promises."""


# -- helpers -------------------------------------------------------------------------


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups; ``[exc]`` for a plain one."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(client: Any) -> str:
    from urllib.parse import urlsplit

    backend = getattr(client.backend, "value", client.backend) or "kai"
    host = urlsplit(client.base_url).netloc or client.base_url
    return f"{backend} @ {host}"


def _short_error(exc: KaiError) -> str:
    if isinstance(exc, KaiConnectionError):
        return "server unreachable"
    if isinstance(exc, KaiTimeoutError):
        return "server timed out"
    return exc.message[:80]


# -- entry points ------------------------------------------------------------------


async def run_shell_async(
    runtime: Runtime, chat_id: str | None = None, *, offline: bool = False, **shell: Any
) -> None:
    """Run the shell until the user quits (for ``kai shell`` and ``kai demo``).

    :param chat_id: the chat to continue: its id, or a prefix the log knows.
    :param shell: more keyword arguments of :class:`Shell` (tests pass input/output).
    """
    if chat_id is not None:
        from .ids import resolve

        chat_id = await resolve(runtime, chat_id)
    await Shell(runtime, chat_id=chat_id, offline=offline, **shell).run()


def run_shell(runtime: Runtime, *, chat_id: str | None = None, offline: bool = False) -> None:
    """Blocking form of :func:`run_shell_async` (runs trio)."""
    trio.run(lambda: run_shell_async(runtime, chat_id, offline=offline))
