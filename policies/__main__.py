"""The CrossGuard entry point: `pulumi preview --policy-pack policies`. It only builds the pack.

Constructing `PolicyPack` starts the analyzer server, so nothing else may import this module; the
rules live in `policies/rules.py`, where the tests use them.
"""

import sys
from pathlib import Path

# The budget rule prices the stack with the repository's cost model (ops/cost.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.rules import policies

PolicyPack(
    name="streamr-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
)
