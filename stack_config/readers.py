"""Reading one stack-config value: coercion of the strings Pulumi hands a program, range and
pattern checks, and messages that name the key and the allowed values.

`ValueReader` collects every problem rather than stopping at the first, so one run shows them all;
which keys exist and how they depend on each other is `stack_config.parsing`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import time
from typing import Any

from stack_config.model import key_name

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CLOCK_DESCRIPTION = "a time HH:MM (24-hour)"
# RFC 2606 (and RFC 6761's localhost): names reserved for documentation and tests. Let's Encrypt
# refuses them as contacts and names, and nobody can point them at the platform.
_RESERVED_TLDS = ("example", "test", "invalid", "localhost")
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_DESCRIPTION = (
    "a name you own, not one reserved for documentation (RFC 2606: example.com/.net/.org, "
    ".example, .test, .invalid, .localhost)"
)


def reserved_name(domain: str) -> bool:
    """True for RFC 2606's reserved names and everything under them."""
    labels = domain.lower().rstrip(".").split(".")
    name = ".".join(labels[-2:])
    return labels[-1] in _RESERVED_TLDS or name in _RESERVED_DOMAINS


class ValueReader:
    """Typed readers over the raw values; each bad value adds a problem and yields a default."""

    def __init__(
        self,
        values: Mapping[str, Any],
        region: str | None,
        documentation_keys: frozenset[str] = frozenset(),
    ):
        self.values = dict(values)
        self.region = region
        self.documentation_keys = documentation_keys
        self.problems: list[str] = []

    def _choice(self, key: str, default: str, allowed: tuple[str, ...]) -> Any:
        raw = self.values.get(key, default)
        if raw not in allowed:
            self.problems.append(rejected(key, raw, ", ".join(allowed)))
            return default
        return raw

    def _bool(self, key: str, default: bool) -> bool:
        raw = self.values.get(key, default)
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.problems.append(rejected(key, raw, "true, false"))
        return default

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        raw = self.values.get(key, default)
        value = _coerce(raw, int)
        if value is None or not low <= value <= high:
            self.problems.append(rejected(key, raw, f"{low}..{high}"))
            return default
        return value

    def _number(self, key: str, default: float, low: float, high: float) -> float:
        raw = self.values.get(key, default)
        value = _coerce(raw, float)
        if value is None or not low <= value <= high:
            self.problems.append(rejected(key, raw, f"a number from {low:g} to {high:g}"))
            return default
        return value

    def _pattern(self, key: str, pattern: re.Pattern[str], description: str) -> str | None:
        raw = self.values.get(key)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or not pattern.match(raw):
            self.problems.append(rejected(key, raw, description))
            return None
        return raw

    def _owned(self, key: str, domain: str | None) -> str | None:
        """`domain` unless it is reserved for documentation (allowed only where the offline
        harness filled it in: `documentation_keys`)."""
        if domain is None or key in self.documentation_keys or not reserved_name(domain):
            return domain
        self.problems.append(rejected(key, self.values.get(key), RESERVED_DESCRIPTION))
        return None

    def _email(self, key: str) -> str | None:
        address = self._pattern(key, _EMAIL, "an e-mail address at a domain you own")
        if address is None:
            return None
        return address if self._owned(key, address.rsplit("@", 1)[1]) else None

    def _clock(self, key: str, raw: Any) -> time | None:
        match = _CLOCK.match(raw) if isinstance(raw, str) else None
        if match is None:
            self.problems.append(rejected(key, raw, CLOCK_DESCRIPTION))
            return None
        return time(int(match.group(1)), int(match.group(2)))


def rejected(key: str, raw: Any, allowed: str) -> str:
    return f"{key_name(key)}: {raw!r} is not allowed; allowed values: {allowed}"


def _coerce(raw: Any, kind: Callable[[Any], Any]) -> Any:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = kind(raw)
        return value if value == raw else None
    if isinstance(raw, str):
        try:
            return kind(raw.strip())
        except ValueError:
            return None
    return None


def as_list(raw: Any) -> list[Any] | None:
    """Pulumi hands structured config to a program as JSON; a comma list is accepted too."""
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, list) else None
        return [part.strip() for part in text.split(",") if part.strip()]
    return None
