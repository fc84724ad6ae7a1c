"""The `reasoning-agent` command line.

Each subcommand is a module of this package exposing:

- ``add_parser(subparsers) -> argparse.ArgumentParser``: adds its parser (name, help, options);
- ``run(args: argparse.Namespace) -> int``: does the work and returns the exit code.

To add a command, write the module and add one line to :data:`COMMANDS`. Modules are imported
to build the parser, so keep their top level light (argparse only) and import heavy things
(the registry, the web app, the database) inside ``run``: `reasoning-agent providers` must not
pay for FastAPI, and `reasoning-agent serve` must not pay for the SDKs.

Errors print ``error: <code>: <message>`` on stderr and exit with 1, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMMANDS", "build_parser", "main", "report_error"]

COMMANDS: tuple[str, ...] = (
    "api.cli.providers_cmd",
    "api.cli.ask",
    "api.cli.serve",
    "api.cli.worker",
    "api.cli.migrate",
)
"""The command modules, in the order `--help` lists them."""

PROG = "reasoning-agent"


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ReasoningAgent: a pluggable, multi-provider LLM agent.",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="configuration file (default: $REASONING_AGENT_CONFIG, else ./plugins.toml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log warnings (-v) or more (-vv)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        command = module.add_parser(subparsers)
        command.set_defaults(run=module.run)
    return parser


def report_error(error: BaseException) -> int:
    """Prints `error: <code>: <message>` on stderr; returns the exit code 1.

    Our own errors carry a stable `code` and a safe message. Anything else is a bug: its type
    is named, its message is not printed (a foreign message may quote a secret).
    """
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if isinstance(code, str) and isinstance(message, str):
        print(f"error: {code}: {message}", file=sys.stderr)
    else:
        print(
            f"error: internal_error: unexpected {type(error).__name__} (run with -vv for details)",
            file=sys.stderr,
        )
        logging.getLogger("reasoning_agent.cli").debug("unexpected error", exc_info=error)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s: %(name)s: %(message)s")
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        return report_error(error)
    return code
