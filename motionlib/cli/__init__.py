"""Command line: a thin typer shell over motionlib.library. Heavy imports stay inside commands."""

from __future__ import annotations

import sys

from motionlib.cli.app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    from motionlib.cli.app import describe
    from motionlib.core.errors import MotionlibError

    try:
        app(args=argv, prog_name="motionlib")
    except MotionlibError as err:  # raised outside a command (e.g. opening the library)
        sys.stderr.write(f"error: {describe(err)}\n")
        sys.exit(err.exit_code)
