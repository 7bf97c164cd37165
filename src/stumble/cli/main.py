"""``stumble`` — the command-line entry point; each command group registers itself."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from stumble import __version__


def build_parser() -> argparse.ArgumentParser:
    from stumble.cli import keys, plan, serve  # noqa: PLC0415 - keep `stumble --help` fast

    parser = argparse.ArgumentParser(
        prog="stumble",
        description="Self-hosted, privacy-first UX telemetry: where people get stuck.",
    )
    parser.add_argument("--version", action="version", version=f"stumble {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.register(sub)
    keys.register(sub)
    plan.register(sub)
    for optional in ("report", "simulate", "demo", "tokens", "audit", "raw", "fixes", "digest"):
        _register_optional(sub, optional)
    _register_optional(sub, "alerts")
    _register_optional(sub, "rollups")
    _register_optional(sub, "retention")
    return parser


def _register_optional(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Command groups that land in later modules register only when present."""
    import importlib  # noqa: PLC0415

    try:
        module = importlib.import_module(f"stumble.cli.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"stumble.cli.{name}":
            raise
        return
    module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # The data directory holds keys, secrets and events: whatever a command creates in it is
    # the service account's alone, DuckDB's own files (the WAL comes and goes) included.
    previous = os.umask(0o077)
    try:
        return run_command(args)
    finally:
        os.umask(previous)  # main() also runs inside other programs (and the tests)


def run_command(args: argparse.Namespace) -> int:
    """Run the chosen command; an expected failure is one line on stderr, not a traceback."""
    from stumble.cli.common import expected_failure  # noqa: PLC0415

    try:
        result: int = args.func(args)
    except Exception as error:
        failure = expected_failure(error)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return failure.exit_code
    return result


if __name__ == "__main__":
    sys.exit(main())
