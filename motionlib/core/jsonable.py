"""Plain JSON values from what the library computes (numpy scalars, paths, non-finite floats)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/inf -> None, paths -> str."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
