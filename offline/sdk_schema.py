"""What the Pulumi SDK classes say about a resource type: which inputs and outputs it has.

Read from the installed provider SDKs (pulumi_aws, pulumi_random...), so the harness follows the
provider version the program runs with instead of a list kept by hand.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache


@cache
def resource_class(type_: str) -> type | None:
    """The Pulumi SDK class for a type token, e.g. aws:ec2/vpc:Vpc -> pulumi_aws.ec2.Vpc."""
    package, module_path, class_name = type_.split(":")
    module = module_path.split("/")[0]
    try:
        sdk = importlib.import_module(f"pulumi_{package.replace('-', '_')}")
    except ImportError:
        return None
    # Modules named like Python keywords get a trailing underscore (`lambda` -> `lambda_`).
    namespace = sdk if module == "index" else getattr(sdk, module, getattr(sdk, f"{module}_", None))
    return getattr(namespace, class_name, None)


@cache
def accepts_property(type_: str, python_name: str) -> bool:
    cls = resource_class(type_)
    if cls is None:
        return False
    return python_name in inspect.signature(cls._internal_init).parameters


@cache
def has_output(type_: str, python_name: str) -> bool:
    cls = resource_class(type_)
    return cls is not None and isinstance(getattr(cls, python_name, None), property)
