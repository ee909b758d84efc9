"""Command-line parsing that reports a usage error as one line naming the program, not argparse's
usage block: the operator tools (`ops`, `offline.*`, `backend.bootstrap`) all parse with it."""

from __future__ import annotations

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def key_values(self, option: str, items: list[str]) -> dict[str, str]:
        """`KEY=VALUE` arguments of a repeated option as a dict; anything else is a usage error."""
        pairs = {}
        for item in items:
            key, separator, value = item.partition("=")
            if not separator:
                self.error(f"{option} expects KEY=VALUE, got {item!r}")
            pairs[key] = value
        return pairs
