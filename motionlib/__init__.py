"""motionlib: reference videos in, versioned and scored motion assets out."""

__version__ = "0.1.0"
