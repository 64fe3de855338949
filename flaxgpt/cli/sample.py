"""``flaxgpt sample RUN_DIR --prompt TEXT`` and ``flaxgpt chat RUN_DIR``: a trained model in the terminal.

``sample`` continues a prompt (streaming the text as it is generated; with ``--n`` > 1 the samples run
as one batch and each is printed when it ends). ``chat`` is a conversation rendered with the chat
template (``flaxgpt.data.chat_template``), the reply streamed until the model ends its turn (``<|end|>``).
Chat reads stdin line by line, so it can be driven through a pipe; lines starting with ``/`` are
commands (``/help`` lists them); the conversation itself is ``flaxgpt.infer.chat.ChatSession``. The chat
needs a run trained with the ``flaxgpt`` tokenizer (it has the role tokens).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, Any

from flaxgpt.infer.chat import SETTINGS, ChatSession
from flaxgpt.infer.generator import Generator, TokenDelta, load_generator
from flaxgpt.infer.quant import param_bytes
from flaxgpt.infer.sampling import SamplingParams

CHAT_HELP = """commands:
  /reset               forget the conversation (the system prompt stays)
  /system TEXT         set the system prompt (and reset); '/system' alone removes it
  /set NAME VALUE      change a setting: """ + ", ".join(SETTINGS) + """ ('/set seed none': random)
  /show                print the settings
  /help                this list
  /quit                leave (so does end of input)"""


def _add_common(parser: argparse.ArgumentParser, *, max_new_tokens: int, temperature: float) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory (its latest checkpoint is used)")
    parser.add_argument("--step", type=int, default=None, help="use this checkpoint step instead of the latest")
    parser.add_argument("--int8", action="store_true", help="int8 weights (infer/quant): less memory, faster on CPU")
    parser.add_argument("--max-len", type=int, default=None, help="KV-cache length (default: the model's context)")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=temperature, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=0, help="0: off")
    parser.add_argument("--top-p", type=float, default=1.0, help="1: off")
    parser.add_argument("--min-p", type=float, default=0.0, help="0: off")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, help="1: off")
    parser.add_argument("--presence-penalty", type=float, default=0.0)
    parser.add_argument("--frequency-penalty", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None, help="default: random")


def _sampling(args: argparse.Namespace, **extra: Any) -> SamplingParams:
    return SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                          repetition_penalty=args.repetition_penalty, presence_penalty=args.presence_penalty,
                          frequency_penalty=args.frequency_penalty, seed=args.seed, **extra)


def _load(args: argparse.Namespace) -> Generator:
    return load_generator(args.run_dir, args.step, int8=args.int8, max_len=args.max_len)


# ------------------------------------------------------------------------------------------------ sample


def add_arguments_sample(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt sample`` arguments to ``parser``."""
    _add_common(parser, max_new_tokens=200, temperature=0.8)
    parser.add_argument("--prompt", default="", help="text to continue (default: start from <|endoftext|>)")
    parser.add_argument("--n", type=int, default=1, help="samples of the prompt (run as one batch)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop at this text (repeatable)")


def run_sample(args: argparse.Namespace, stdout: IO[str] | None = None) -> int:
    """Runs ``flaxgpt sample`` from parsed arguments; returns the exit status."""
    out = stdout or sys.stdout
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    sampling = _sampling(args, stop=tuple(args.stop))
    gen = _load(args)
    if args.int8:
        print(f"int8 weights: {param_bytes(gen.params) / 1e6:.1f} MB", file=sys.stderr)
    if args.n == 1:
        out.write(args.prompt)
        out.flush()
        gen.generate([args.prompt], sampling, args.max_new_tokens, callback=_writer(out))
        out.write("\n")
    else:
        def show(delta: TokenDelta) -> None:
            if delta.finish_reason is not None:
                result = texts[delta.index] + delta.text
                out.write(f"--- sample {delta.index + 1} ({delta.finish_reason}) ---\n{args.prompt}{result}\n")
                out.flush()
            else:
                texts[delta.index] += delta.text

        texts = [""] * args.n
        gen.generate([args.prompt] * args.n, sampling, args.max_new_tokens, callback=show)
    out.flush()
    return 0


def _writer(out: IO[str]) -> Callable[[TokenDelta], None]:
    def write(delta: TokenDelta) -> None:
        if delta.text:
            out.write(delta.text)
            out.flush()

    return write


# ------------------------------------------------------------------------------------------------ chat


def add_arguments_chat(parser: argparse.ArgumentParser) -> None:
    """Adds the ``flaxgpt chat`` arguments to ``parser``."""
    _add_common(parser, max_new_tokens=256, temperature=0.7)
    parser.add_argument("--system", default=None, metavar="TEXT", help="system prompt")


def run_chat(args: argparse.Namespace, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Runs ``flaxgpt chat`` from parsed arguments, reading stdin line by line; returns the exit status."""
    stdin, out = stdin or sys.stdin, stdout or sys.stdout
    interactive = stdin.isatty()
    session = ChatSession(_load(args), args.system, _sampling(args), args.max_new_tokens)
    if interactive:
        out.write(f"chatting with {args.run_dir} (/help for commands, /quit to leave)\n")
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = stdin.readline()
        if not line:  # end of input
            break
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("/"):
            if not _command(session, line, out):
                break
            continue
        out.write("assistant> ")
        out.flush()
        try:
            done = session.reply(line, on_text=lambda t: (out.write(t), out.flush()))
        except ValueError as err:
            out.write(f"\nerror: {err}\n")
            continue
        out.write("\n" if done.finish_reason == "stop" else " [...]\n")  # [...]: cut at max_new_tokens
        out.flush()
    return 0


def _command(session: ChatSession, line: str, out: IO[str]) -> bool:
    """Runs a /command; returns False to leave the chat."""
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if name in ("quit", "exit", "q"):
        return False
    if name == "reset":
        session.reset()
        out.write("(conversation reset)\n")
    elif name == "system":
        session.system = rest or None
        session.reset()
        out.write(f"(system prompt {'set' if rest else 'removed'}; conversation reset)\n")
    elif name == "set":
        key, _, value = rest.partition(" ")
        try:
            out.write(f"({session.set(key, value.strip())})\n")
        except ValueError as err:
            out.write(f"error: {err}\n")
    elif name == "show":
        out.write("".join(f"  {k} = {v}\n" for k, v in session.settings().items()))
    elif name == "help":
        out.write(CHAT_HELP + "\n")
    else:
        out.write(f"error: unknown command /{name} (/help lists them)\n")
    out.flush()
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m flaxgpt.cli.sample sample|chat ...`` (the same as ``flaxgpt sample|chat``)."""
    parser = argparse.ArgumentParser(prog="flaxgpt", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments_sample(sub.add_parser("sample", help="continue a prompt"))
    add_arguments_chat(sub.add_parser("chat", help="chat in the terminal"))
    args = parser.parse_args(argv)
    try:
        return run_sample(args) if args.command == "sample" else run_chat(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
