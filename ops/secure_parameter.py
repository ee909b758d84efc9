"""Reading a secret the stack keeps as an SSM SecureString parameter
(components/secure_parameter.py).

Stdlib and a boto3 SSM client only, so the Lambda functions can use it.
"""

from __future__ import annotations

from typing import Any

# The value a parameter holds until whoever writes it from outside the program has stored it.
UNSET = "unset"


class ParameterUnset(LookupError):
    """The parameter still holds the placeholder: its value has not been stored yet."""


def read_secure(ssm: Any, name: str) -> str:
    """The decrypted value of parameter `name` (a name or an ARN); ParameterUnset while it holds
    the placeholder, with the command that stores it."""
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    if value == UNSET:
        raise ParameterUnset(
            f"parameter {name} has no value yet; store it with: aws ssm put-parameter "
            f"--name {name} --type SecureString --overwrite --value <value>"
        )
    return value
