"""Video in and out, for ingest, previews and renders alike (PyAV is imported only here).

* ``video``: probe and decode with the display rotation applied and real per-frame timestamps;
  the frames of a source clip aligned with a motion's timestamps.
* ``encode``: H.264 MP4 at given timestamps, written aside and renamed into place; the checks an
  output path must pass before any work.
"""
