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


LOINC = "http://loinc.org"
OURS = "urn:icans-risk:observation"


def observation(rid: str, code: tuple[str, str], when: str, value) -> dict:
    """An Observation of the example's patient: ``value`` a number (``valueInteger``) or
    ``(number, UCUM code)`` (``valueQuantity``); ``when`` the effectiveDateTime."""
    system, c = code
    out = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/example"},
        "code": {"coding": [{"system": system, "code": c}]},
        "effectiveDateTime": when,
    }
    if isinstance(value, tuple):
        number, unit = value
        out["valueQuantity"] = {"value": number, "unit": unit, "system": UCUM, "code": unit}
    else:
        out["valueInteger"] = value
    return out


UCUM = "http://unitsofmeasure.org"

# The daily routine series of the example's patient (infused 2026-03-02, day 0; lymphodepletion
# from 2026-02-25, day -5; assessed on day 5 at 10:00 +01:00). What each maps to is worked out
# by hand in tests/test_fhir_mapping.py.
DAILY = [
    observation(
        "temp-d2-morning", (LOINC, "8310-5"), "2026-03-04T08:00:00+01:00", (101.3, "[degF]")
    ),
    observation("temp-d2-noon", (LOINC, "8310-5"), "2026-03-04T14:00:00+01:00", (38.2, "Cel")),
    observation(
        "temp-d2-evening", (LOINC, "8310-5"), "2026-03-04T20:00:00+01:00", (99.5, "[degF]")
    ),
    observation("temp-d4", (LOINC, "8310-5"), "2026-03-06T08:00:00+01:00", (37.2, "Cel")),
    observation("crp-d1", (LOINC, "1988-5"), "2026-03-03T06:00:00+01:00", (2.1, "mg/dL")),
    observation("crp-d3-morning", (LOINC, "1988-5"), "2026-03-05T06:00:00+01:00", (8.0, "mg/dL")),
    observation("crp-d3-evening", (LOINC, "1988-5"), "2026-03-05T18:00:00+01:00", (95, "mg/L")),
    observation("ice-d4-morning", (OURS, "ice-score"), "2026-03-06T08:00:00+01:00", 9),
    observation("ice-d4-evening", (OURS, "ice-score"), "2026-03-06T20:00:00+01:00", 10),
    observation("ice-d5-early", (OURS, "ice-score"), "2026-03-07T07:00:00+01:00", 10),
    observation("ice-d5-late", (OURS, "ice-score"), "2026-03-07T09:30:00+01:00", 8),
    observation("ice-d5-evening", (OURS, "ice-score"), "2026-03-07T20:00:00+01:00", 3),
    observation("fibrinogen-d2", (LOINC, "3255-7"), "2026-03-04T06:00:00+01:00", (3.1, "g/L")),
    observation(
        "creatinine-d3", (LOINC, "14682-9"), "2026-03-05T06:00:00+01:00", (106.1, "umol/L")
    ),
    observation("lymphocytes-d1", (LOINC, "731-0"), "2026-03-03T06:00:00+01:00", (0.4, "/nL")),
    observation("platelets-d1", (LOINC, "777-3"), "2026-03-03T06:00:00+01:00", (88, "10*3/uL")),
    observation("ferritin-d3", (LOINC, "2276-4"), "2026-03-05T06:00:00+01:00", (2400, "ug/L")),
    observation("il6-d2", (LOINC, "26881-3"), "2026-03-04T06:00:00+01:00", (310, "ng/L")),
    observation("ldh-d3", (LOINC, "14804-9"), "2026-03-05T06:00:00+01:00", (12, "ukat/L")),
]


def with_daily(bundle: dict | None = None) -> dict:
    """The example Bundle (or ``bundle``) with the daily routine series :data:`DAILY`."""
    bundle = copy.deepcopy(bundle or example_bundle())
    bundle["entry"] += [{"resource": copy.deepcopy(r)} for r in DAILY]
    return bundle


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
