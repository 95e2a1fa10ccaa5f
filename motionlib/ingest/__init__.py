"""Ingest: decode a clip, estimate poses, score them. Returns motions; only the library persists."""
