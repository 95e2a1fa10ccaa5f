"""The Zarr v3 store of motion versions. The only package that imports zarr.

One version = one Zarr group directory::

    <version dir>/zarr.json         group metadata; attributes["motionlib"] is the manifest
    <version dir>/keypoints/        float32 [T, J, 2]  pixels of the displayed source frame
    <version dir>/confidence/       float32 [T, J]     visibility in [0, 1]
    <version dir>/timestamps/       float64 [T]        seconds from the first frame
    <version dir>/world/            float32 [T, J, 3]  metres (when the estimator gives them)
    <version dir>/presence/         float32 [T, J]     (when the estimator gives it)

``schemas/motion-store.schema.json`` and ``schemas/motion-manifest.schema.json`` describe it.
Versions are written once, into a staging directory, then renamed into place and made read-only.

``files`` holds the one way every part of motionlib writes a file atomically and keeps files by
content (it imports nothing but the standard library).
"""

__all__ = ["MANIFEST_KEY", "finalize", "read_manifest", "read_motion", "set_manifest", "warm_imports",
           "write_version"]


def __getattr__(name: str):
    # the Zarr store's functions, imported on first use: ``motionlib.store.files`` stays as light
    # as the standard library for the code that only writes files
    if name in __all__ and name != "warm_imports":
        from motionlib.store import zarrstore

        return getattr(zarrstore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def warm_imports() -> None:
    """Import zarr (~0.5 s here) ahead of time, e.g. while pose workers are busy."""
    import zarr  # noqa: F401
