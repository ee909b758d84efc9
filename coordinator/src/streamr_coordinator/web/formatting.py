"""How the pages write amounts, sizes and moments (the templates' filters)."""

from __future__ import annotations

from datetime import UTC, datetime


def money(minor: int, unit: str) -> str:
    """An amount in minor units (hundredths), with its unit: "1,234.56 credits", "3.00 EUR"."""
    return f"{minor / 100:,.2f} {unit}"


def size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"
