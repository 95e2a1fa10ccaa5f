"""One exception hierarchy. The CLI turns any MotionlibError into a single line on stderr.

A message that names a parameter of the call that failed writes it as a field, ``{start}`` (or
with a value, ``{retarget=global}``), and lists it in ``params`` (other braces stay as they are).
The library's own wording spells it as the parameter's name (``start must be >= 0 seconds``, ``use
retarget=global``); a front end spells it its own way with ``err.message(spell)`` (the CLI:
``--start must be >= 0 seconds``, ``use --retarget global``). Pure code never writes a
command-line flag itself.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

_FIELD = re.compile(r"\{([a-z_]+)(?:=([^{}\s]+))?\}")


class MotionlibError(Exception):
    """Base class: an error the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 1

    def __init__(self, message: str = "", *, params: Mapping[str, str] | Iterable[str] = ()):
        self.template = message
        # parameter name -> how the library spells it when no front end says otherwise
        self.params: dict[str, str] = dict(params) if isinstance(params, Mapping) else {p: p for p in params}
        super().__init__(self.message())

    def message(self, spell: Callable[[str], str | None] | None = None) -> str:
        """The message with each named parameter spelled by ``spell(name)`` (None: the default)."""
        if not self.params:
            return self.template

        def word(m: re.Match) -> str:
            name, value = m.group(1), m.group(2)
            if name not in self.params:
                return m.group(0)  # not a parameter: literal text (a user's value, say)
            given = spell(name) if spell is not None else None
            if value is None:
                return given or self.params[name]
            return f"{given} {value}" if given else f"{self.params[name]}={value}"

        return _FIELD.sub(word, self.template)

    def __reduce__(self):  # survives pickling (errors raised in worker processes)
        return (_rebuild, (type(self), self.template, self.params))


def _rebuild(cls, template: str, params: dict) -> MotionlibError:
    err = cls.__new__(cls)
    MotionlibError.__init__(err, template, params=params)
    return err


class InputError(MotionlibError):
    """Bad input from the user: a path, a name, an option value, a file's content. The command
    line exits with 2 for these (as for a bad option), 1 for the other errors."""

    exit_code = 2


class InvalidName(InputError):
    pass


class MediaError(InputError):
    """The file is not something we can decode (not a video, truncated, audio only ...)."""


class NoPersonError(MotionlibError):
    """Pose estimation found nobody to follow."""


class NotFound(MotionlibError):
    """A motion, version or tag that does not exist."""


class LibraryError(MotionlibError):
    """The library on disk is unusable (newer schema, corrupt index, unwritable)."""


class IndexDamaged(LibraryError):
    """The index file is there but SQLite cannot read it (``reindex`` rebuilds it)."""


class EstimatorError(MotionlibError):
    """The pose estimator could not be set up (missing model file, bad .task file)."""


class ModelError(MotionlibError):
    """Model weights that are there but cannot be loaded (damaged, wrong shapes, wrong class)."""


class FetchFailed(MotionlibError):
    """A model download that did not complete or was refused (network, size, digest); nothing
    was kept."""


class SourceUnavailable(InputError):
    """A version's frames no longer sit on a kept source clip (or none is kept)."""


class RenderFailed(MotionlibError):
    """A render that started and failed; its record (status ``failed``) is ``record``."""

    def __init__(self, message: str, record=None, **kw):
        super().__init__(message, **kw)
        self.record = record


def disk_problem(err: BaseException, where: object) -> "LibraryError | None":
    """A LibraryError in the user's words for a fault of the disk under ``where`` (the library,
    or a file being written): full, read-only, not permitted, I/O error. None for anything else.
    Takes an OSError or a SQLite error (whose message is all it carries)."""
    import errno

    code = getattr(err, "errno", None)
    text = str(getattr(err, "orig", None) or err).lower()
    if code == errno.EIO or "disk i/o error" in text:  # SQLite says this when it cannot grow its files
        import shutil

        try:
            full = shutil.disk_usage(str(where)).free < (1 << 20)
        except (OSError, TypeError, ValueError):
            full = False
        if full:
            code = errno.ENOSPC
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text:
        return LibraryError(f"no space left on the disk of {where}: free some space and run the command again "
                            "(nothing was changed)")
    if code == errno.EROFS or "readonly database" in text or "read-only" in text:
        return LibraryError(f"{where} is on a read-only disk: it can be read, not changed")
    if code in (errno.EACCES, errno.EPERM):
        return LibraryError(f"{where}: permission denied ({getattr(err, 'filename', None) or 'cannot write'})")
    if code == errno.EIO or "disk i/o error" in text:
        return LibraryError(f"the disk of {where} reported an I/O error (full, failing, or gone); "
                            "nothing was changed - check it, then `motionlib doctor`")
    return None
