"""Client authentication for the CDS Hooks service: a signed JWT on every call.

What the CDS Hooks 2.0 specification ("Trusting CDS Clients") asks of a CDS service, checked in
this order, each refusal naming its reason:

* the token is a JWT signed with an **asymmetric** algorithm: ``RS384`` or ``ES384`` (the two the
  specification names); ``none`` and HMAC (``HS*``) are refused before any key is looked at, so
  the classic confusion (an HMAC token "signed" with a public key) cannot arise;
* its issuer (``iss``) is on the configured allow-list; the key comes from that issuer's
  configured JWKS, or from the ``jku`` URL in the header only when that URL is allow-listed for
  the issuer (fetched over HTTP(S) and cached);
* the key is the one named by ``kid`` (or the issuer's only key);
* signature, ``aud`` equal to this service's URL, ``exp`` passed and ``iat`` in the future
  refused (with a small clock skew, ``leeway_s``), and the presence of ``iss``, ``sub``,
  ``aud``, ``exp``, ``iat`` and ``jti``, by PyJWT (a maintained library does the
  cryptography);
* a lifetime of at most 5 minutes (``exp`` no later than ``iat`` + 300 s: the specification's
  bound);
* ``jti`` not seen before within the token's lifetime (replay).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from icans.errors import IcansError, InvalidInputError

ALGORITHMS = ("RS384", "ES384")
_KEY_TYPE = {"RS384": "RSA", "ES384": "EC"}
MAX_LIFETIME_S = 300
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")


class ClientAuthError(IcansError):
    """A CDS client's token is refused; the message says why (answered with 401)."""


@dataclass(frozen=True)
class TrustedIssuer:
    """A CDS client allowed to call: its ``iss``, its key set (a JWKS dict) and/or the JWKS
    URLs its tokens may name in ``jku``."""

    iss: str
    jwks: dict | None = None
    jku_allowed: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()  # fhirServer URLs the service may fetch from for it


def load_clients(path: Path) -> list[TrustedIssuer]:
    """The trusted CDS clients of a TOML file (``ICANS_CDS_CLIENTS``)::

        [[client]]
        iss = "https://ehr.example.org"             # the JWT's iss
        jwks_file = "ehr-jwks.json"                 # its public keys (relative to this file)
        jku = ["https://ehr.example.org/jwks"]      # and/or key-set URLs its tokens may name
        fhir_servers = ["https://ehr.example.org/fhir"]  # where the service may fetch data

    Every problem is an :class:`InvalidInputError` naming the client and the field.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError("cds_clients", str(path), "an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError("cds_clients", str(path), f"valid TOML ({exc})") from None
    out = []
    for i, client in enumerate(table.get("client", [])):
        where = f"{path} client[{i}]"
        iss = client.get("iss")
        if not isinstance(iss, str) or not iss:
            raise InvalidInputError("iss", iss, "the issuer's identifier (a string)", where)
        jwks = None
        if "jwks_file" in client:
            key_file = path.parent / client["jwks_file"]
            try:
                jwks = json.loads(key_file.read_text())
                jwt.PyJWKSet.from_dict(jwks)
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                raise InvalidInputError(
                    "jwks_file", str(key_file), f"a readable JWKS file ({exc})", where
                ) from None
        lists = {k: client.get(k, []) for k in ("jku", "fhir_servers")}
        for name, urls in lists.items():
            if not isinstance(urls, list) or not all(
                isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls
            ):
                raise InvalidInputError(name, urls, "a list of http(s) URLs", where)
        if jwks is None and not lists["jku"]:
            raise InvalidInputError("jwks_file", None, "a key set (jwks_file) or jku URLs", where)
        out.append(
            TrustedIssuer(
                iss,
                jwks,
                tuple(lists["jku"]),
                tuple(u.rstrip("/") for u in lists["fhir_servers"]),
            )
        )
    return out


def fetch_jwks(url: str, timeout_s: float = 3.0) -> dict:
    """The JWKS at ``url`` (HTTP GET, JSON)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


@dataclass
class ReplayCache:
    """``jti`` values seen, each kept until its token expires (thread-safe)."""

    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_use(self, key: str, expires: float, now: float) -> bool:
        """True the first time ``key`` is presented before it expires, False on a replay."""
        with self._lock:
            for old in [k for k, exp in self._seen.items() if exp < now]:
                del self._seen[old]
            if key in self._seen:
                return False
            self._seen[key] = expires
            return True


class SqliteReplayCache:
    """``jti`` values seen, shared by every worker process of a server through one sqlite
    file: a token replayed to another worker is refused too (the primary key makes the
    first use atomic across processes)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS jti (key TEXT PRIMARY KEY, expires REAL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def first_use(self, key: str, expires: float, now: float) -> bool:
        con = self._connect()
        try:
            con.execute("DELETE FROM jti WHERE expires < ?", (now,))
            con.execute("INSERT INTO jti (key, expires) VALUES (?, ?)", (key, expires))
            return True
        except sqlite3.IntegrityError:
            return False
        finally:
            con.close()


class ClientVerifier:
    """Verifies CDS clients' JWTs against the trusted issuers, for one service URL."""

    def __init__(
        self,
        issuers: list[TrustedIssuer],
        audience: str,
        leeway_s: float = 30.0,
        fetch: Callable[[str], dict] = fetch_jwks,
        clock: Callable[[], float] = time.time,
        replays: ReplayCache | SqliteReplayCache | None = None,
    ):
        self.issuers = {i.iss: i for i in issuers}
        self.audience = audience
        self.leeway_s = leeway_s
        self.fetch = fetch
        self.clock = clock
        self.replays = replays or ReplayCache()
        self._fetched: dict[str, jwt.PyJWKSet] = {}
        # the configured key sets parsed once, not on every call
        self._configured = {
            i.iss: jwt.PyJWKSet.from_dict(i.jwks) for i in issuers if i.jwks is not None
        }

    def verify(self, token: str, audience: str | None = None) -> dict:
        """The verified claims of ``token``; :class:`ClientAuthError` naming the reason.
        ``audience``: the URL called, when it is not the verifier's own (CDS Hooks: the
        endpoint the client calls)."""
        if not self.issuers:
            raise ClientAuthError("no CDS clients are configured (ICANS_CDS_CLIENTS)")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise ClientAuthError(f"not a valid JWT ({exc})") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise ClientAuthError(
                f"algorithm {alg!r} refused: only {' or '.join(ALGORITHMS)} (asymmetric)"
            )
        iss = unverified.get("iss")  # any JSON value: only text names an issuer
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise ClientAuthError(f"issuer {unverified.get('iss')!r} is not allowed")
        key = self._key(issuer, header)
        if key.key_type != _KEY_TYPE[alg]:  # PyJWT would raise TypeError, not a PyJWTError
            raise ClientAuthError(
                f"token refused: alg {alg} with a {key.key_type} key (kid {header.get('kid')!r})"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=audience or self.audience,
                issuer=issuer.iss,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidAudienceError:
            raise ClientAuthError(
                f"token refused: aud {unverified.get('aud')!r} is not the URL called "
                f"({audience or self.audience!r})"
            ) from None
        except jwt.PyJWTError as exc:
            raise ClientAuthError(f"token refused: {exc}") from None
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_S:
            raise ClientAuthError(
                f"token refused: lifetime {claims['exp'] - claims['iat']} s exceeds "
                f"{MAX_LIFETIME_S} s (exp - iat)"
            )
        if not self.replays.first_use(f"{issuer.iss}|{claims['jti']}", claims["exp"], self.clock()):
            raise ClientAuthError("token refused: jti already used (replay)")
        return claims

    def _key(self, issuer: TrustedIssuer, header: dict) -> jwt.PyJWK:
        """The verification key: from the allow-listed ``jku`` if the header names one, else
        from the issuer's configured key set; by ``kid``, or the only key."""
        jku = header.get("jku")
        if jku is not None:
            if jku not in issuer.jku_allowed:
                raise ClientAuthError(f"jku {jku!r} is not allow-listed for {issuer.iss!r}")
            if jku not in self._fetched:
                try:
                    self._fetched[jku] = jwt.PyJWKSet.from_dict(self.fetch(jku))
                except (OSError, ValueError, jwt.PyJWTError) as exc:
                    raise ClientAuthError(f"key set at {jku!r} could not be read ({exc})") from None
            keys = self._fetched[jku]
        elif issuer.jwks is not None:
            keys = self._configured[issuer.iss]
        else:
            raise ClientAuthError(f"no key set configured for {issuer.iss!r} and no jku")
        kid = header.get("kid")
        matching = [k for k in keys.keys if kid is None or k.key_id == kid]
        if len(matching) != 1:
            raise ClientAuthError(f"no single key for kid {kid!r} in the key set of {issuer.iss!r}")
        return matching[0]
