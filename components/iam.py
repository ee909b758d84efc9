"""IAM documents shared by the components."""

from __future__ import annotations

import json
from typing import Any


def assumed_by(service: str, source_account: str | None = None) -> str:
    """A role's trust policy: only `service` may assume it (and, given `source_account`, only on
    behalf of that account: confused-deputy protection)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
