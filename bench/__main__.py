"""`make bench`: run every benchmark (or those named: `python -m bench coordinator_hooks`)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["coordinator_hooks", "cpu_per_request", "payouts", "reporter_accuracy"]


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
