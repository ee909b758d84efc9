"""What the figures were measured on: they are only comparable within one run on one machine."""

from __future__ import annotations

import os


def describe_machine() -> str:
    one, five, fifteen = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f} "
        "(1, 5, 15 min)"
    )
