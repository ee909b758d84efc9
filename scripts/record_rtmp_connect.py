#!/usr/bin/env python3
"""Record what a real SRS origin answers to the wake endpoint's RTMP readiness probe.

Starts an SRS origin (config from `srs/render.py`'s `render_origin`, listen ports moved to free
loopback ones as `scripts/record_srs.py` does), runs `ops/rtmp_probe.py`'s probe against it (the
handshake and a `connect` to the `live` app) and writes under `<out>/`: `handshake.bin` (S0+S1+S2
as SRS sent them), `connect-answer.bin` (everything SRS sent after the handshake until the probe
had its answer) and `meta.json` (SRS version, date, command, the probe's verdict, the config).
`tests/ops/test_rtmp_probe.py` replays them from a loopback server.

    python scripts/record_rtmp_connect.py --srs /work/srs-bin/srs-6.0.157 \
        --out tests/fixtures/srs/rtmp-connect
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record_srs import Ports, Srs, relisten, srs_version

from ops.rtmp_probe import probe
from srs.render import OriginSettings, render_origin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/srs/rtmp-connect"))
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (see the fixtures README)")
    ports = Ports.pick()
    # No hook runs for a connect: no hook relay is started (the heartbeats to it fail, harmlessly).
    config = relisten(render_origin(OriginSettings(coordinator_url="http://127.0.0.1:9")), ports)
    heard: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="record-rtmp-") as work:
        origin = Srs(args.srs.resolve(), "origin", config, ports, Path(work))
        try:
            verdict = probe("127.0.0.1", ports.rtmp, timeout=5.0, heard=heard)
        finally:
            origin.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "handshake.bin").write_bytes(heard[0])
    (args.out / "connect-answer.bin").write_bytes(heard[1] if len(heard) > 1 else b"")
    meta = {
        "srs_version": srs_version(args.srs),
        "srs_binary": args.srs.name,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python scripts/record_rtmp_connect.py " + " ".join(argv or sys.argv[1:]),
        "verdict": {"ready": verdict.ready, "reason": verdict.reason},
        "rtmp_port": ports.rtmp,
        "origin_config": config,
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["verdict"]))
    return 0 if verdict.ready else 1


if __name__ == "__main__":
    sys.exit(main())
