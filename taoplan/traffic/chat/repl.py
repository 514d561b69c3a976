"""The ``taoplan chat`` loop: read a line (readline: editing and history), run a command or send a turn.

Every turn goes through ``taoplan.traffic.request.perform_streaming``, so it is routed, checked and
logged like any ``taoplan request``. Ctrl+C during a turn cancels that turn (its row is logged as
cancelled) and the conversation stays as it was; Ctrl+C at the prompt clears the line; Ctrl+D or
``/quit`` leaves. Problems are one ``Error:`` line, and the loop goes on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taoplan.errors import TaoplanError
from taoplan.traffic.chat.conversation import Conversation
from taoplan.traffic.request import decode_data_uri, reply_content
from taoplan.traffic.request.session import perform_streaming

if TYPE_CHECKING:
    from taoplan.traffic.request import Session
    from taoplan.traffic.request.sampling import Ask

HISTORY_FILE = "chat_history"  # in the project's state directory
HISTORY_LINES = 1000

HELP = """\
Commands:
  /image URL|PATH   attach an image to the next message (repeatable)
  /video URL|PATH   attach a video to the next message (repeatable)
  /system TEXT      set the system message (/system alone clears it)
  /params           ask for every sampling value again (Enter keeps the current one)
  /params k=v ...   set sampling values, e.g. /params temperature=0.2 max_tokens=64
  /reset            forget the conversation and the attachments
  /help             this list
  /quit             leave (or Ctrl+D)
Attachments go with the next message, answered or failed. Ctrl+C cancels the reply in flight: the
conversation and the attachments stay as they were before that message."""


@dataclass
class Repl:
    session: Session
    conversation: Conversation
    make_ask: Callable[[str], Ask]  # a terminal prompt for sampling values, given its header
    timeout: float | None = None
    read: Callable[[str], str] = input
    out: Callable[[str], None] = print

    def say(self, text: str) -> None:
        self.out(text)

    def error(self, exc: TaoplanError) -> None:
        for line in exc.lines:
            self.out(f"Error: {line}")

    def run(self) -> None:
        target = self.session.target
        self.say(f"Chat with {target.who} ({target.arch}). /help lists commands; /quit or Ctrl+D leaves.")
        if not self.conversation.multi_turn:
            self.say(
                f"Note: {target.arch} reads only the first user message, so each message is sent on its "
                "own; earlier turns are not sent."
            )
        while True:
            try:
                line = self.read(f"{target.who}> ").strip()
            except EOFError:
                self.say("")
                return
            except KeyboardInterrupt:
                self.say("")
                continue
            if not line:
                continue
            command = line.startswith("/")
            try:
                if not command:
                    self.send(line)
                elif not self.command(line):
                    return
            except TaoplanError as exc:
                self.error(exc)
            except KeyboardInterrupt:
                self.say(
                    "\nCancelled."
                    if command
                    else "\nCancelled; the conversation is as it was before this message."
                )
            except Exception as exc:  # noqa: BLE001 - one line and the chat goes on; never a traceback
                self.out(f"Error: internal error: {type(exc).__name__}: {exc}")

    def command(self, line: str) -> bool:
        """Run one /command; False to leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        conv = self.conversation
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name in ("/image", "/video"):
            self.conversation = conv.attach(name[1:], arg)
            count = len(self.conversation.images) + len(self.conversation.videos)
            self.say(f"Attached to the next message ({count} attachment{'s' if count != 1 else ''}).")
        elif name == "/system":
            self.conversation = conv.with_system(arg)
            self.say(f"System message set: {arg}" if arg else "System message cleared.")
        elif name == "/params":
            self.params(arg)
        elif name == "/reset":
            self.conversation = conv.reset()
            self.say("Conversation and attachments cleared.")
        else:
            self.say(f"Unknown command {name}; /help lists commands.")
        return True

    def params(self, arg: str) -> None:
        conv = self.conversation
        if arg:
            self.conversation = conv.with_params(arg.split())
        else:
            header = (
                f"Sampling values for {self.session.target.who} ({conv.arch}); Enter keeps the value shown:"
            )
            ask = self.make_ask(header)
            values: dict[str, Any] = {}
            for name, spec in conv.fields.items():
                current = spec.model_copy(update={"default": conv.values.get(name, spec.default)})
                values[name] = ask(name, current)
            self.conversation = conv.with_values(values)
        shown = " ".join(f"{k}={v!r}" for k, v in self.conversation.values.items())
        self.say(f"Sampling: {shown}")

    def send(self, text: str) -> None:
        conv = self.conversation
        prepared = conv.turn(text)
        streamed: list[str] = []

        def on_text(piece: str) -> None:
            streamed.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()

        try:
            body = perform_streaming(self.session, prepared, on_text, timeout=self.timeout)
        except TaoplanError:
            self.conversation = conv.failed()  # the attachments went with that message
            raise
        reply = reply_content(body) or ""
        if streamed:
            self.say("")
        else:
            self.say(_printable(reply))
        self.conversation = conv.answered(prepared, reply)


def _printable(reply: str) -> str:
    decoded = decode_data_uri(reply)
    if decoded is None:
        return reply
    return f"(the reply is {decoded[0]}, {len(decoded[1])} bytes; not printed on a terminal)"


def open_history(state_dir: Path) -> Callable[[], None]:
    """Line editing and this project's chat history (``<state dir>/chat_history``, 0600); returns the
    function that saves it. Without readline (or without a terminal), plain input and no history."""
    try:
        import readline
    except ImportError:
        return lambda: None
    path = state_dir / HISTORY_FILE
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LINES)

    def save() -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            readline.write_history_file(path)
        except OSError:
            pass

    return save


def run_chat(
    session: Session,
    values: dict[str, Any],
    make_ask: Callable[[str], Ask],
    state_dir: Path,
    *,
    timeout: float | None = None,
    system: str | None = None,
) -> None:
    """The REPL with history on; the history is saved however it ends."""
    conversation = Conversation.start(session.target, session.refs.request, values, system)
    save = open_history(state_dir)
    try:
        Repl(session, conversation, make_ask, timeout).run()
    finally:
        save()
