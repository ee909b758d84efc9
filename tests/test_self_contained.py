"""The test suite reads only files inside the repository: a user's clone has nothing next to it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# An absolute path into a place no clone has, or a relative one climbing out of the repository.
OUTSIDE = re.compile(
    r"""(?x)
    ["'](/work|/home|/root|/srv|/mnt|/Users)/   # absolute paths into someone's machine
    | \.parents\[(?P<depth>\d+)\]             # climbing up from a test file
    | ["']\.\./                                 # a relative path out of the working directory
    """
)


def escapes(line: str, levels_inside: int) -> bool:
    """Whether `line` names a path outside the repository, for a file `levels_inside` folders
    below the repository root (so `.parents[levels_inside]` is the root itself)."""
    return any(
        match.group("depth") is None or int(match.group("depth")) > levels_inside
        for match in OUTSIDE.finditer(line)
    )


def test_no_test_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue  # its own examples below
        levels_inside = len(path.relative_to(ROOT).parts) - 1
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if escapes(line, levels_inside):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_check_sees_the_paths_that_broke_fresh_clones() -> None:
    assert escapes('REFERENCE = Path("/work/shared/reference/headscale")', 2)
    assert escapes('CAPTURED = Path(__file__).resolve().parents[3] / "shared" / "x.jsonl"', 2)
    assert escapes('open("../shared/reference/srs/full.conf")', 2)
    assert not escapes('ROOT = Path(__file__).resolve().parents[2] / "coordinator"', 2)
    assert not escapes('REFERENCE = Path(__file__).resolve().parent / "reference"', 2)
