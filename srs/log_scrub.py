#!/usr/bin/env python3
"""SRS's console log with every query value and bearer credential blanked, line by line.

SRS logs what clients send as they sent it: the publisher's `?key=<stream key>` in its "client
identified", "connected stream" and hook lines (the hook's request body holds `param`), a viewer's
`?ticket=` in its play lines and HTTP request lines. Those values are credentials, so on the origin
SRS's output goes through this filter before it is shipped off the host (srs/bootstrap.sh), and
nothing else of it is kept. Every value after `?` or `&` in a URL or `param` becomes `[redacted]`
(the parameter names stay, for diagnosis), as does the credential after `Bearer`.

    srs ... 2>&1 | log_scrub.py | <shipper>

Standard library only, Python 3.9+ (Amazon Linux 2023's python3).
"""

from __future__ import annotations

import re
import sys

REDACTED = "[redacted]"
# A query parameter's value: after `?name=` or `&name=`, up to the next delimiter SRS writes
# around a URL or param (`&`, white space, `,`, a quote, a closing bracket).
_QUERY_VALUE = re.compile(r"([?&][^=&?\s,\"'\\]+=)[^&\s,\"'\\)\]}]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s,\"'\\]+")


def scrub(line: str) -> str:
    return _BEARER.sub(rf"\g<1>{REDACTED}", _QUERY_VALUE.sub(rf"\g<1>{REDACTED}", line))


def main() -> int:
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    for line in stdin:
        sys.stdout.write(scrub(line))
        sys.stdout.flush()  # a line reaches the shipper as SRS writes it
    return 0


if __name__ == "__main__":
    sys.exit(main())
