from __future__ import annotations

import contextvars
import functools
import json
import sys
from typing import Annotated, Callable, Optional

import typer

# the argument naming one motion version, shared by every command that takes one
Ref_ = Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="Motion (latest version) or name@N.")]

app = typer.Typer(
    name="motionlib",
    help="Keep the performance of a reference video as a versioned, scored motion asset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class State:
    def __init__(self, library: Optional[str]):
        self.library_path = library
        self._library = None

    @property
    def library(self):
        if self._library is None:
            from motionlib.library import Library

            self._library = Library.open(self.library_path)
        return self._library


@app.callback()
def _root(
    ctx: typer.Context,
    library: Annotated[
        Optional[str],
        typer.Option(
            "--library", "-L", metavar="PATH|URL",
            help="Library directory, or a shared library's URL: postgresql://user@host/db?store=s3://bucket/prefix "
                 "(docs/team.md). Default: $MOTIONLIB_LIBRARY, else the per-user data directory.",
        ),
    ] = None,
):
    ctx.obj = State(library)


def console(stderr: bool = False):
    """A rich console on stdout (or stderr) that colours only what we mark."""
    from rich.console import Console

    return Console(highlight=False, stderr=stderr)


def warn_lines(out, warnings) -> None:
    """Each warning on its own line, ``  ! ...`` in yellow."""
    for w in warnings:
        out.print(f"  ! {w}", style="yellow")


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


# the command running now (set by handles_errors), whose options spell the library's parameters
_COMMAND: contextvars.ContextVar = contextvars.ContextVar("motionlib_command", default=None)


def flag(name: str) -> str:
    """The command line's spelling of a library parameter: the running command's option of that
    name (its long form), else ``--name-with-dashes``."""
    command = _COMMAND.get()
    for param in command.params if command is not None else ():
        if param.name == name and getattr(param, "param_type_name", "") == "option":
            return max(param.opts, key=len)
    return "--" + name.replace("_", "-")


def describe(err: BaseException) -> str:
    """One line for an error: a library error in the command line's words (its parameters
    spelled as flags), anything else with its type."""
    from motionlib.core.errors import MotionlibError

    if isinstance(err, MotionlibError):
        return err.message(flag)
    return f"{type(err).__name__}: {err}"


def os_message(err: OSError) -> str:
    """One line for a fault of the disk or the system: what happened, to which file."""
    from motionlib.core.errors import disk_problem

    where = err.filename or "the file being written"
    problem = disk_problem(err, where)
    return problem.message() if problem is not None else f"{where}: {err.strerror or err}"


def handles_errors(fn: Callable) -> Callable:
    """Turn MotionlibError into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from motionlib.core.errors import MotionlibError

        ctx = kwargs.get("ctx")  # every command that opens the library takes ``ctx``
        token = _COMMAND.set(getattr(ctx, "command", None))
        try:
            return fn(*args, **kwargs)
        except MotionlibError as err:
            fail(describe(err), err.exit_code)
        except OSError as err:  # writing an output (or reading an input) outside the library
            fail(os_message(err))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        finally:
            _COMMAND.reset(token)

    return wrapper


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def stream_json(items, lines: bool = False, batch: int = 500) -> None:
    """Records (dicts) written as they come: one JSON array, compact, a record a line (``lines``:
    JSON Lines, no brackets), so a listing of any size starts at once and holds one batch."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    out = sys.stdout
    buf: list[str] = []
    first = True
    for item in items:
        text = encode(item)
        buf.append(text if lines else (("[" if first else ",\n") + text))
        first = False
        if len(buf) >= batch:
            out.write("\n".join(buf) + "\n" if lines else "".join(buf))
            buf.clear()
    if lines:
        out.write("\n".join(buf) + "\n" if buf else "")
    else:
        out.write("".join(buf) + ("[]\n" if first else "]\n"))


def write_lines(lines, batch: int = 500) -> None:
    """Text lines to stdout in batches (a streamed table)."""
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= batch:
            sys.stdout.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        sys.stdout.write("\n".join(buf) + "\n")


from motionlib.cli import motions, edits, exchange, identities, renders, models  # noqa: E402,F401,I001  (registers the commands, in help order)
