"""Fault points for the crash-safety tests: ``MOTIONLIB_FAULT=<point>`` stops the process at that
point (it says ``FAULT <point>`` on stderr and sleeps until it is killed). Unset, a fault point
costs one dictionary lookup."""

from __future__ import annotations

import os
import sys
import time

ENV = "MOTIONLIB_FAULT"


def fault(point: str) -> None:
    if os.environ.get(ENV) == point:
        sys.stderr.write(f"FAULT {point}\n")
        sys.stderr.flush()
        time.sleep(3600)
