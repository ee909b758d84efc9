"""Copy the watch page's player builds (and licences) from the pinned npm packages into the
coordinator's static files: `python scripts/vendor_player_libs.py` after `npm ci --prefix
coordinator/player` (part of `make setup`). tests/web/test_player_libs.py checks the copies."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "coordinator" / "player" / "node_modules"
VENDOR = ROOT / "coordinator" / "src" / "streamr_coordinator" / "web" / "static" / "vendor"
# (file in node_modules, name served under /static/vendor/)
FILES = (
    ("mpegts.js/dist/mpegts.js", "mpegts.js"),
    ("mpegts.js/dist/mpegts.js.LICENSE.txt", "mpegts.js.LICENSE.txt"),
    ("mpegts.js/LICENSE", "mpegts.js.LICENSE"),
    ("hls.js/dist/hls.light.min.js", "hls.light.min.js"),
    ("hls.js/LICENSE", "hls.js.LICENSE"),
)


def main() -> int:
    missing = [source for source, _ in FILES if not (PACKAGES / source).is_file()]
    if missing:
        print(f"missing {missing}: run `npm ci --prefix coordinator/player` first", file=sys.stderr)
        return 2
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, name in FILES:
        shutil.copyfile(PACKAGES / source, VENDOR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
