"""A small HuJSON reader: strips `//` and `/* */` comments and trailing commas, then parses JSON.

HuJSON is what Headscale's policy file is written in; no maintained PyPI package reads it, and the
grammar beyond JSON is just these two additions.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def loads(text: str) -> Any:
    return json.loads(_drop_trailing_commas(_drop_comments(text)))


def _drop_comments(text: str) -> str:
    out: list[str] = []
    index, in_string = 0, False
    while index < len(text):
        char = text[index]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[index + 1])
                index += 1
            elif char == '"':
                in_string = False
            index += 1
        elif char == '"':
            in_string = True
            out.append(char)
            index += 1
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = len(text) if end == -1 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end == -1:
                raise ValueError(f"unterminated /* comment at offset {index}")
            index = end + 2
        else:
            out.append(char)
            index += 1
    if in_string:
        raise ValueError("unterminated string")
    return "".join(out)


def _drop_trailing_commas(text: str) -> str:
    out: list[str] = []
    in_string, index = False, 0
    while index < len(text):
        char = text[index]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[index + 1])
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char == ",":
            match = _TRAILING_COMMA.match(text, index)
            if not match:
                out.append(char)
        else:
            out.append(char)
        index += 1
    return "".join(out)
