"""One exception hierarchy. The CLI turns any MotionlibError into a single line on stderr."""


class MotionlibError(Exception):
    """Base class: an error the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 1


class InputError(MotionlibError):
    """Bad input from the user: a path, a name, an option value."""


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


class EstimatorError(MotionlibError):
    """The pose estimator could not be set up (missing model file, bad .task file)."""


class ModelError(MotionlibError):
    """Model weights that are there but cannot be loaded (damaged, wrong shapes, wrong class)."""
