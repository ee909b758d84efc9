"""Command-line parsing that reports a usage error as one line naming the program, not argparse's
usage block: the operator tools (`ops`, `offline.*`, `backend.bootstrap`) all parse with it."""

from __future__ import annotations

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")
