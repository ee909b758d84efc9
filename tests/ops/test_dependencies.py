"""`ops/` runs inside Lambda: the handler and everything it imports need only the standard library
and boto3, and no module of `ops/` reaches into the operator-side code (offline/, the program)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

OPS = Path(__file__).resolve().parents[2] / "ops"
LAMBDA_THIRD_PARTY = {"boto3", "botocore"}  # what the Lambda Python runtime provides
OPERATOR_SIDE = {"offline", "program", "components", "stack_config", "policies", "pulumi"}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_ops_module_reaches_into_operator_side_code() -> None:
    reaching = {
        path.name: sorted(name for name in imports_of(path) if name.split(".")[0] in OPERATOR_SIDE)
        for path in sorted(OPS.glob("*.py"))
    }
    assert {name: found for name, found in reaching.items() if found} == {}


def test_the_lambda_handler_needs_only_the_standard_library_and_boto3() -> None:
    seen: set[str] = set()
    pending = ["ops.handler"]
    outside: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in imports_of(OPS / f"{module.split('.')[1]}.py"):
            top = name.split(".")[0]
            if top == "ops":
                parts = name.split(".")
                if len(parts) > 1 and (OPS / f"{parts[1]}.py").exists():
                    pending.append(f"ops.{parts[1]}")
            elif top not in sys.stdlib_module_names and top not in LAMBDA_THIRD_PARTY:
                outside.add(f"{module} imports {name}")
    assert "ops.executor" in seen  # the walk really followed the handler's imports
    assert outside == set()
