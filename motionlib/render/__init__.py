"""Rendering: pose maps (ControlNet conditioning images), video encoding, previews."""
