#!/usr/bin/env python3
"""A friend's edge serving HTTPS-FLV on a real SRS: the edge config from `srs/render.py` with a
certificate (`tls_name`), an SRS origin it pulls from, both on loopback with their hook relays
and a hook server that allows everything (record_srs.py's), an ffmpeg publisher. The certificate
has the shape lego writes (`<name>.crt`: the leaf, then its issuer; `<name>.key`: traditional
PEM), issued by a throwaway CA made here (a root, the only thing clients trust, and an
intermediate), with the files replaced while SRS runs:

- lego's default EC P-256 key: does a handshake succeed?
- an RSA 2048 key (`--key-type rsa2048`): the handshake, trusting the intermediate and root, and
  trusting the root alone (is the intermediate sent from the bundle?);
- `curl` plays `https://<edge name>:<port>/live/show.flv` (the name resolved to loopback with
  `--resolve`, `Origin:` sent as a watch page's fetch does: is CORS answered?), `ffprobe` reads
  what it received, and `ffprobe` plays the HTTPS URL itself (`-tls_verify 1`), as a player would;
- the HTTP port still serves the stream (mesh viewers without a browser);
- a renewed certificate written over the files: does a new connection see it without a restart?

Prints what it saw as JSON and exits 1 when HTTPS-FLV did not play; `--record DIR` also writes it
(with the edge config) to DIR/run.json.

    .venv/bin/python scripts/real_edge_https_run.py --srs /path/to/srs/trunk/objs/srs \
        [--record tests/fixtures/srs/edge-https --srs-source "..."]
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from record_srs import (
    APP,
    STREAM,
    Clock,
    HookRecorder,
    HookRelay,
    Ports,
    Srs,
    credential_file,
    free_port,
    publisher,
    relisten,
    srs_version,
)

from srs.render import EDGE_TLS_DIR, EdgeSettings, OriginSettings, render_edge, render_origin

EDGE_NAME = "n7.edge.example.test"
PUBLISH_SECONDS = 40
PLAY_SECONDS = 8
WATCH_ORIGIN = "https://api.example.test"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


class Authority:
    """A throwaway CA shaped like Let's Encrypt's: a root (the only thing clients trust) and an
    intermediate that issues the edge's certificates."""

    def __init__(self, directory: Path) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._sign(
            _name("run root"), _name("run root"), self.root_key.public_key(), self.root_key, True
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._sign(
            _name("run intermediate"), _name("run root"), self.key.public_key(), self.root_key, True
        )
        self.path = directory / "root.crt"
        self.path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _sign(subject, issuer, public_key, signer, ca: bool) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName(EDGE_NAME), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def issue(self, directory: Path, key_type: str) -> int:
        """Writes `<edge name>.crt` (leaf, then intermediate) and `.key` as lego does for
        `--key-type rsa2048` or `ec256`; returns the leaf's serial."""
        key = (
            rsa.generate_private_key(65537, 2048)
            if key_type == "rsa2048"
            else ec.generate_private_key(ec.SECP256R1())
        )
        leaf = self._sign(
            _name(EDGE_NAME), _name("run intermediate"), key.public_key(), self.key, False
        )
        pem = serialization.Encoding.PEM
        (directory / f"{EDGE_NAME}.crt").write_bytes(
            leaf.public_bytes(pem) + self.intermediate.public_bytes(pem)
        )
        key_path = directory / f"{EDGE_NAME}.key"
        key_path.write_bytes(
            key.private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return leaf.serial_number


def served_serial(port: int, ca: Path) -> int | str:
    """The serial of the certificate a new connection sees, trusting `ca` (or why it failed)."""
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=EDGE_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as error:
        return f"handshake failed: {error}"
    return x509.load_der_x509_certificate(der).serial_number


def curl(url: str, out: Path, *options: str) -> dict:
    # A watch page fetches cross-origin: the browser sends Origin and needs the CORS answer.
    command = ["curl", "-sS", "--max-time", str(PLAY_SECONDS), "-D", f"{out}.headers"]
    command += ["-H", f"Origin: {WATCH_ORIGIN}"]
    command += ["-o", str(out), "-w", "%{http_code} %{ssl_verify_result} %{size_download}"]
    result = subprocess.run(  # noqa: S603 - curl with our own URL
        [*command, *options, url], capture_output=True, text=True, check=False
    )
    status, verify, size = result.stdout.split()
    headers = Path(f"{out}.headers").read_text(errors="replace").lower()
    return {
        "exit_status": result.returncode,  # 28: cut at --max-time, as a live stream is
        "http_status": int(status),
        "ssl_verify_result": int(verify),
        "received_bytes": int(size),
        "cors_allow_origin": next(
            (
                line.split(":", 1)[1].strip()
                for line in headers.splitlines()
                if line.startswith("access-control-allow-origin:")
            ),
            None,
        ),
        "stderr": result.stderr.strip()[-300:],
    }


def ffprobe(source: str, *options: str) -> dict:
    command = ["ffprobe", "-v", "error", *options, "-show_entries", "stream=codec_name"]
    command += ["-of", "json", source]
    result = subprocess.run(  # noqa: S603 - ffprobe with our own input
        command, capture_output=True, text=True, timeout=60, check=False
    )
    codecs = []
    if result.returncode == 0:
        codecs = sorted(s["codec_name"] for s in json.loads(result.stdout)["streams"])
    return {"exit_status": result.returncode, "codecs": codecs, "stderr": result.stderr[-300:]}


def run(binary: Path, work: Path) -> dict:
    clock = Clock()
    hooks = HookRecorder(clock)
    relays = {
        name: HookRelay(
            f"{hooks.url}/{name}",
            credential_file(work, f"{name}-credential", f"{name}-throwaway-credential"),
            work / f"{name}-relay.log",
        )
        for name in ("origin", "edge")
    }
    ports = {"origin": Ports.pick(), "edge": Ports.pick()}
    https_port = free_port()
    origin_config = relisten(
        render_origin(
            OriginSettings(hooks.url, server_id="origin", hook_relay_port=relays["origin"].port)
        ),
        ports["origin"],
    )
    edge_settings = EdgeSettings(
        "127.0.0.1",
        server_id="edge",
        hook_relay_port=relays["edge"].port,
        tls_name=EDGE_NAME,
        https_port=https_port,
    )
    edge_config = relisten(render_edge(edge_settings), ports["edge"], ports["origin"].rtmp)
    tls = work / "edge" / EDGE_TLS_DIR.removeprefix("./")
    tls.mkdir(parents=True)
    authority = Authority(work)
    # Both files the issuer and root: what a client would trust if SRS sent no chain.
    chain_trust = work / "intermediate-and-root.crt"
    chain_trust.write_bytes(
        authority.intermediate.public_bytes(serialization.Encoding.PEM)
        + authority.path.read_bytes()
    )
    authority.issue(tls, "ec256")
    origin = Srs(binary, "origin", origin_config, ports["origin"], work)
    edge = Srs(binary, "edge", edge_config, ports["edge"], work)
    path = f"/{APP}/{STREAM}.flv"
    https_url = f"https://{EDGE_NAME}:{https_port}{path}"
    resolve = f"{EDGE_NAME}:{https_port}:127.0.0.1"
    seen: dict = {"srs_version": srs_version(binary), "edge_name": EDGE_NAME}
    try:
        publishing = publisher(ports["origin"], PUBLISH_SECONDS)
        time.sleep(3)
        # lego's default key type: SRS reads the key with SSL_use_RSAPrivateKey_file.
        seen["ec256_key"] = served_serial(https_port, chain_trust)
        # SRS reads key and certificate at each handshake: a new pair needs no restart.
        rsa_serial = authority.issue(tls, "rsa2048")
        seen["rsa2048_key_trusting_intermediate"] = served_serial(https_port, chain_trust) == (
            rsa_serial
        )
        # Does SRS send the intermediate from the .crt bundle (SSL_use_certificate_file)?
        seen["rsa2048_key_trusting_root_only"] = served_serial(https_port, authority.path)
        seen["https_curl_root_only"] = curl(
            https_url, work / "root-only.flv", "--cacert", str(authority.path), "--resolve", resolve
        )
        seen["https_curl"] = curl(
            https_url, work / "https.flv", "--cacert", str(chain_trust), "--resolve", resolve
        )
        seen["https_curl_ffprobe"] = ffprobe(str(work / "https.flv"))
        seen["https_ffprobe_direct"] = ffprobe(
            f"https://localhost:{https_port}{path}",
            *("-tls_verify", "1", "-ca_file", str(chain_trust), "-read_intervals", "%+3"),
        )
        seen["http_curl"] = curl(f"http://127.0.0.1:{ports['edge'].http}{path}", work / "h.flv")
        renewed = authority.issue(tls, "rsa2048")
        seen["renewed_served_without_restart"] = served_serial(https_port, chain_trust) == renewed
        publishing.terminate()
        publishing.wait(timeout=30)
    finally:
        edge.stop()
        origin.stop()
        for relay in relays.values():
            relay.stop()
        hooks.close()
    seen["seconds"] = clock.now()
    seen["edge_config"] = edge_config.replace(str(relays["edge"].port), "<relay port>")
    seen["edge_https_errors"] = sorted(
        {
            line.split("serve error ", 1)[1][:160]
            for line in edge.log_path.read_text(errors="replace").splitlines()
            if "serve error code=404" in line
        }
    )
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument("--record", type=Path, help="write what was seen to DIR/run.json")
    parser.add_argument("--srs-source", default="", help="where the binary was built from")
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (tests/fixtures/srs)")
    with tempfile.TemporaryDirectory(prefix="real-edge-https-") as work:
        seen = run(args.srs.resolve(), Path(work))
    seen["srs_source"] = args.srs_source
    print(json.dumps(seen, indent=2))
    if args.record:
        args.record.mkdir(parents=True, exist_ok=True)
        (args.record / "run.json").write_text(json.dumps(seen, indent=2) + "\n")
    played = seen["https_curl"]["received_bytes"] > 0 and seen["https_curl_ffprobe"]["codecs"]
    return 0 if played and seen["https_curl"]["ssl_verify_result"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
