"""FHIR test helpers: the documented example Bundle moved in time, signed CDS client tokens, and a
small FHIR server on 127.0.0.1.

The FHIR server is a fixture, not a real FHIR server: none can be installed from the package
registries this project may use (PyPI, npm, Debian). HAPI FHIR ships as a Java WAR or a Docker
image (neither reachable), Medplum's server needs PostgreSQL and Redis and is configured as a
whole platform. The fixture implements what the service uses of the FHIR REST API, as the
specification describes it: ``GET [base]/Patient/[id]``, ``GET [base]/[type]?patient=[id]``
with an optional ``code=system|code,...`` token filter (a ``system|`` token matches any code of
the system), ``searchset`` Bundles paged with ``next`` links (3 entries a page, to exercise
paging), ``application/fhir+json``, and a bearer token that must match (401 otherwise). Every
request is recorded for the tests to inspect.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "fhir" / "example-bundle.json"
EXAMPLE_INFUSION = date(2026, 3, 2)
EXAMPLE_AT = datetime.fromisoformat("2026-03-07T10:00:00+01:00")  # day 5, as in the doc

_DATEISH = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")


def example_bundle() -> dict:
    return json.loads(EXAMPLE.read_text())


def shifted(bundle: dict, days: int) -> dict:
    """The Bundle with every date and dateTime moved by ``days`` (ages unchanged)."""

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str) and (m := _DATEISH.match(x)):
            moved = date.fromisoformat(m.group(1)) + timedelta(days=days)
            return moved.isoformat() + (m.group(2) or "")
        return x

    return walk(copy.deepcopy(bundle))


def infused_days_ago(day: int, bundle: dict | None = None) -> dict:
    """The example Bundle moved so that today (local time) is ``day`` days after infusion;
    resources dated after now are dropped (the EHR would not hold them yet)."""
    today = datetime.now().astimezone().date()
    moved = shifted(bundle or example_bundle(), (today - EXAMPLE_INFUSION).days - day)
    now = datetime.now().astimezone()
    kept = []
    for entry in moved["entry"]:
        r = entry["resource"]
        when = r.get("effectiveDateTime")
        if when and "T" in when and datetime.fromisoformat(when) > now:
            continue
        kept.append(entry)
    return moved | {"entry": kept}


def prefetch_of(bundle: dict) -> dict:
    """The example Bundle split into the service's prefetch keys."""
    by_type: dict[str, list] = {}
    patient = None
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Patient":
            patient = r
        else:
            by_type.setdefault(r["resourceType"], []).append({"resource": r})
    keys = {
        "conditions": "Condition",
        "observations": "Observation",
        "medications": "MedicationAdministration",
        "procedures": "Procedure",
    }
    out = {"patient": patient}
    for key, rtype in keys.items():
        out[key] = {"resourceType": "Bundle", "type": "searchset", "entry": by_type.get(rtype, [])}
    return out


# --------------------------------------------------------------------------------------------
# CDS clients: keys and tokens
# --------------------------------------------------------------------------------------------

ISSUER = "https://ehr.example.org"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())


def jwk(key, kid: str) -> dict:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid}


JWKS = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]}


def client_token(aud: str, key=RSA_KEY, alg="RS384", kid="rsa-1", headers=None, **claims) -> str:
    """A CDS client's JWT for ``aud``, valid unless ``claims`` or the key say otherwise."""
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": "ehr-client",
        "aud": aud,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    } | claims
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} | (headers or {}))


def unsigned_or_hmac_token(aud: str, alg: str) -> str:
    """A token a CDS service must refuse whatever it says: ``none`` or HMAC (HS256)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "x", "aud": aud, "iat": now, "exp": now + 60, "jti": alg}
    key = None if alg == "none" else "a-shared-secret-of-32-bytes-0000"
    return jwt.encode(claims, key, algorithm=alg)


def write_clients_file(directory: Path, fhir_servers: list[str]) -> Path:
    """The TOML file of trusted CDS clients (one: ISSUER with JWKS) and its key file."""
    (directory / "ehr-jwks.json").write_text(json.dumps(JWKS))
    servers = ", ".join(json.dumps(s) for s in fhir_servers)
    path = directory / "cds-clients.toml"
    path.write_text(
        f'[[client]]\niss = "{ISSUER}"\njwks_file = "ehr-jwks.json"\nfhir_servers = [{servers}]\n'
    )
    return path


# --------------------------------------------------------------------------------------------
# A small FHIR server
# --------------------------------------------------------------------------------------------


class FixtureFhirServer:
    """Serves the resources of ``bundle`` at ``http://127.0.0.1:<port>/fhir``."""

    PAGE = 3

    def __init__(self, bundle: dict, token: str):
        self.resources = [e["resource"] for e in bundle["entry"]]
        self.token = token
        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _search(self, rtype: str, query: dict) -> list[dict]:
        patient = query.get("patient", [""])[0]
        tokens = [t for v in query.get("code", []) for t in v.split(",")]
        out = []
        for r in self.resources:
            if r["resourceType"] != rtype:
                continue
            if r.get("subject", {}).get("reference") != f"Patient/{patient}":
                continue
            if tokens:
                concept = r.get("code") or r.get("medicationCodeableConcept") or {}
                codings = concept.get("coding", [])
                if not any(
                    t == f"{c.get('system')}|{c.get('code')}" or t == f"{c.get('system')}|"
                    for t in tokens
                    for c in codings
                ):
                    continue
            out.append(r)
        return out

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                server.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    return self._send(401, {"resourceType": "OperationOutcome", "issue": []})
                url = urlsplit(self.path)
                parts = url.path.removeprefix("/fhir/").split("/")
                if len(parts) == 2 and parts[0] == "Patient":
                    found = [
                        r
                        for r in server.resources
                        if r["resourceType"] == "Patient" and r["id"] == parts[1]
                    ]
                    return self._send(200, found[0]) if found else self._send(404, {})
                query = parse_qs(url.query)
                matches = server._search(parts[0], query)
                offset = int(query.get("_offset", ["0"])[0])
                page = matches[offset : offset + server.PAGE]
                body = {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "total": len(matches),
                    "entry": [{"resource": r, "search": {"mode": "match"}} for r in page],
                }
                if offset + server.PAGE < len(matches):
                    nxt = {k: v[0] for k, v in query.items()} | {
                        "_offset": str(offset + server.PAGE)
                    }
                    body["link"] = [
                        {"relation": "next", "url": f"{server.base}/{parts[0]}?{urlencode(nxt)}"}
                    ]
                return self._send(200, body)

        return Handler
