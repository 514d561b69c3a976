"""Parse server command lines with the REAL argument parsers of vLLM and SGLang.

Run with the python of the venv that scripts/server-parser-venv.sh makes (it has vllm and sglang;
taoplan is not needed). stdin: JSON {"NAME": ["vllm", "serve", ...] | ["python3", "-m",
"sglang.launch_server", ...]}. stdout: JSON {"NAME": {"ok": true, "args": {...}} | {"ok": false,
"error": "..."}} with every parsed value (str() where not JSON).

- vLLM: the `vllm serve` subparser exactly as `vllm` builds it (ServeSubcommand.subparser_init).
  Building it instantiates vLLM's config defaults, which ask for the current platform; without a
  GPU vLLM finds none, so its own CpuPlatform is set first. Nothing else is replaced.
- SGLang: ServerArgs.add_cli_args on an ArgumentParser, as sglang.launch_server does.
- argparse accepts unambiguous abbreviations (`--tp` for `--tp-size`), so every `--flag` must also be
  one of the parser's option strings exactly as spelt.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any


def vllm_parser() -> Any:
    import vllm.platforms as platforms
    from vllm.platforms.cpu import CpuPlatform

    platforms._current_platform = CpuPlatform()  # no GPU here: vLLM's own CPU platform
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    ServeSubcommand().subparser_init(parser.add_subparsers(dest="subparser"))
    return parser


def sglang_parser() -> argparse.ArgumentParser:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang.launch_server")
    ServerArgs.add_cli_args(parser)
    return parser


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string a parser (or its `serve` subparser) defines, exactly as spelt."""
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options_of(sub)
    return found


def parse(argv: list[str]) -> dict[str, Any]:
    if argv[:2] == ["vllm", "serve"]:
        parser, words = vllm_parser(), argv[1:]
    elif argv[:3] == ["python3", "-m", "sglang.launch_server"]:
        parser, words = sglang_parser(), argv[3:]
    else:
        return {"ok": False, "error": f"not a vllm or sglang command line: {argv[:3]}"}
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit:
        return {"ok": False, "error": err.getvalue().strip().splitlines()[-1]}
    # argparse takes unambiguous abbreviations (vLLM's parser does): a rendered flag must be spelt out
    known = options_of(parser)
    inexact = [w for w in words if w.startswith("--") and w.split("=", 1)[0] not in known]
    if inexact:
        return {"ok": False, "error": f"not a flag as the parser spells it: {' '.join(inexact)}"}
    values = {
        k: v if isinstance(v, (str, int, float, bool, list, type(None))) else str(v)
        for k, v in vars(args).items()
    }
    return {"ok": True, "args": values}


def main() -> None:
    lines = json.load(sys.stdin)
    print(json.dumps({name: parse(argv) for name, argv in lines.items()}))


if __name__ == "__main__":
    main()
