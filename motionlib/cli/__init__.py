"""Command line: a thin typer shell over motionlib.library. Heavy imports stay inside commands."""

from __future__ import annotations

import sys

from motionlib.cli.app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    from motionlib.cli.app import describe
    from motionlib.core.errors import MotionlibError

    import errno

    import typer
    import typer.main

    try:  # typer >= 0.20 carries its own click
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer on click
        from click import exceptions as click_errors

    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="motionlib", standalone_mode=False)
    except MotionlibError as err:  # raised outside a command (e.g. opening the library)
        sys.stderr.write(f"error: {describe(err)}\n")
        sys.exit(err.exit_code)
    except click_errors.NoArgsIsHelpError as err:  # `motionlib` alone: the help
        sys.stdout.write(err.ctx.get_help() + "\n")
        sys.exit(0)
    except click_errors.UsageError as err:  # a bad option or argument: one line, and where help is
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        sys.stderr.write(f"error: {err.format_message()}{where}\n")
        sys.exit(err.exit_code)
    except click_errors.ClickException as err:
        sys.stderr.write(f"error: {err.format_message()}\n")
        sys.exit(err.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except OSError as err:
        if err.errno == errno.EPIPE:  # the reader went away (`motionlib list | head`)
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)
