"""Paths of the third-party reference material in this folder (see README.md)."""

from pathlib import Path

REFERENCE = Path(__file__).resolve().parent
SRS = REFERENCE / "srs"
HEADSCALE = REFERENCE / "headscale"
