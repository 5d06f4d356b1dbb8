"""Client authentication for the CDS Hooks service: a signed JWT on every call.

What the CDS Hooks 2.0 specification ("Trusting CDS Clients") asks of a CDS service, checked in
this order, each refusal naming its reason:

* the token is a JWT signed with an **asymmetric** algorithm: ``RS384`` or ``ES384`` (the two the
  specification names); ``none`` and HMAC (``HS*``) are refused before any key is looked at, so
  the classic confusion (an HMAC token "signed" with a public key) cannot arise;
* its issuer (``iss``) is on the configured allow-list; the key comes from that issuer's
  configured JWKS, or from the ``jku`` URL in the header only when that URL is allow-listed for
  the issuer (fetched over HTTP(S) and cached, refetched as the client rotates its keys: see
  :meth:`ClientVerifier._jku_keys`);
* the key is the one named by ``kid`` (or the issuer's only key);
* signature, ``aud`` equal to this service's URL, ``exp`` passed and ``iat`` in the future
  refused (with a small clock skew, ``leeway_s``), and the presence of ``iss``, ``sub``,
  ``aud``, ``exp``, ``iat`` and ``jti``, by PyJWT (a maintained library does the
  cryptography);
* a lifetime of at most 5 minutes (``exp`` no later than ``iat`` + 300 s: the specification's
  bound);
* ``jti`` not seen before within the token's lifetime (replay), in the replay store of
  :func:`serving.cds.state.open_state`: one host's SQLite file, or the database every replica
  shares.
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
from serving.cds.stores import ReplayStore, StateUnavailable

ALGORITHMS = ("RS384", "ES384")
_KEY_TYPE = {"RS384": "RSA", "ES384": "EC"}
MAX_LIFETIME_S = 300
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")

JWKS_REFETCH_INTERVAL_S = 10.0
"""Least time between two fetches of one ``jku`` key set by one worker process. A token naming a
``kid`` the cached set lacks makes the verifier fetch the set again (the client may have rotated
its keys), but the ``kid`` is read before any signature is checked: without this bound anyone
could make every request fetch a client's key set (load on the client's key server and on the
service's workers). A rotating client waits at most this long for its new key to be accepted;
each worker process counts on its own."""

JWKS_MAX_AGE_S = 300.0
"""A fetched key set this old is fetched again on its next use, so a key the client removed (a
rotation, or a key compromised) stops being accepted within this time (plus
:data:`JWKS_REFETCH_INTERVAL_S`)."""

JWKS_MAX_STALE_S = 3600.0
"""When that refetch fails (the client's key server is down), the cached set is still used, until
it is this old; then the tokens that need it are refused, naming the failure. Availability
through a short outage of the client's key server, without trusting a removed key for ever."""


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
        try:
            con = self._connect()
        except sqlite3.Error as exc:
            raise StateUnavailable(f"recording the token's jti in {self.path}: {exc}") from None
        try:
            con.execute("DELETE FROM jti WHERE expires < ?", (now,))
            con.execute("INSERT INTO jti (key, expires) VALUES (?, ?)", (key, expires))
            return True
        except sqlite3.IntegrityError:
            return False
        except sqlite3.Error as exc:  # locked past the timeout, disk full, file unreadable
            raise StateUnavailable(f"recording the token's jti in {self.path}: {exc}") from None
        finally:
            con.close()


@dataclass
class _FetchedKeys:
    """One ``jku`` URL's key set as last fetched, and the last attempt."""

    keys: jwt.PyJWKSet | None  # None: never fetched successfully
    fetched_at: float  # of the keys (the clock's seconds)
    attempted_at: float  # of the last fetch, successful or not
    error: str = ""  # why the last attempt failed ("" when it did not)


class ClientVerifier:
    """Verifies CDS clients' JWTs against the trusted issuers, for one service URL.

    ``replays``: where used ``jti`` values are kept (:mod:`serving.cds.stores`; in memory by
    default). ``refetch_interval_s``, ``max_age_s``, ``max_stale_s``: how ``jku`` key sets are
    refreshed (:data:`JWKS_REFETCH_INTERVAL_S`, :data:`JWKS_MAX_AGE_S`,
    :data:`JWKS_MAX_STALE_S`), measured on ``clock``. Thread-safe."""

    def __init__(
        self,
        issuers: list[TrustedIssuer],
        audience: str,
        leeway_s: float = 30.0,
        fetch: Callable[[str], dict] = fetch_jwks,
        clock: Callable[[], float] = time.time,
        replays: ReplayStore | None = None,
        refetch_interval_s: float = JWKS_REFETCH_INTERVAL_S,
        max_age_s: float = JWKS_MAX_AGE_S,
        max_stale_s: float = JWKS_MAX_STALE_S,
    ):
        self.issuers = {i.iss: i for i in issuers}
        self.audience = audience
        self.leeway_s = leeway_s
        self.fetch = fetch
        self.clock = clock
        self.replays: ReplayStore = replays or ReplayCache()
        self.refetch_interval_s = refetch_interval_s
        self.max_age_s = max_age_s
        self.max_stale_s = max(max_stale_s, max_age_s)
        self._fetched: dict[str, _FetchedKeys] = {}
        self._fetching = threading.Lock()  # one fetch at a time: the others then see its keys
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
        # kept while the token could still be accepted: its exp plus the clock skew allowed
        kept_until = claims["exp"] + self.leeway_s
        if not self.replays.first_use(f"{issuer.iss}|{claims['jti']}", kept_until, self.clock()):
            raise ClientAuthError("token refused: jti already used (replay)")
        return claims

    def _key(self, issuer: TrustedIssuer, header: dict) -> jwt.PyJWK:
        """The verification key: from the allow-listed ``jku`` if the header names one, else
        from the issuer's configured key set; by ``kid``, or the only key."""
        jku = header.get("jku")
        kid = header.get("kid")
        if jku is not None:
            if jku not in issuer.jku_allowed:
                raise ClientAuthError(f"jku {jku!r} is not allow-listed for {issuer.iss!r}")
            keys = self._jku_keys(jku, kid)
        elif issuer.jwks is not None:
            keys = self._configured[issuer.iss]
        else:
            raise ClientAuthError(f"no key set configured for {issuer.iss!r} and no jku")
        matching = [k for k in keys.keys if kid is None or k.key_id == kid]
        if len(matching) != 1:
            raise ClientAuthError(f"no single key for kid {kid!r} in the key set of {issuer.iss!r}")
        return matching[0]

    def _jku_keys(self, jku: str, kid: object) -> jwt.PyJWKSet:
        """The key set at ``jku``: fetched on first use; fetched again when it is
        ``max_age_s`` old, or when ``kid`` is not in it (a rotation), but never twice within
        ``refetch_interval_s``. A failed refetch keeps the old set until it is
        ``max_stale_s`` old."""
        with self._fetching:
            now = self.clock()
            cached = self._fetched.get(jku)
            if cached is None or self._wanted(cached, kid, now):
                cached = self._fetched[jku] = self._fetch(jku, cached, now)
            if cached.keys is None or now - cached.fetched_at >= self.max_stale_s:
                wait = max(0.0, cached.attempted_at + self.refetch_interval_s - now)
                raise ClientAuthError(
                    f"key set at {jku!r} could not be read ({cached.error}; tried again in "
                    f"{wait:.0f} s at the earliest)"
                )
            return cached.keys

    def _wanted(self, cached: _FetchedKeys, kid: object, now: float) -> bool:
        """Whether ``cached`` should be fetched again now."""
        if now - cached.attempted_at < self.refetch_interval_s:
            return False
        if cached.keys is None or now - cached.fetched_at >= self.max_age_s:
            return True
        return kid is not None and not any(k.key_id == kid for k in cached.keys.keys)

    def _fetch(self, jku: str, cached: _FetchedKeys | None, now: float) -> _FetchedKeys:
        try:
            return _FetchedKeys(jwt.PyJWKSet.from_dict(self.fetch(jku)), now, now)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            if cached is None:
                return _FetchedKeys(None, now, now, str(exc))
            return _FetchedKeys(cached.keys, cached.fetched_at, now, str(exc))
