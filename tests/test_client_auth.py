"""CDS client JWTs (``serving.cds.client_auth``): real keys and signatures made here, a real HTTP
server on 127.0.0.1 for the ``jku`` key set; every bad token refused with its reason. A client
rotates the keys its key server publishes while a verifier runs (the verifier's clock moved by
the test): the new key is accepted once named, the old refused once withdrawn and the cache
refreshed, a flood of unknown kids fetches no more often than allowed."""

from __future__ import annotations

import http.server
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fhir_fixtures import EC_KEY, ISSUER, JWKS, RSA_KEY, client_token, unsigned_or_hmac_token

from serving.cds.client_auth import ClientAuthError, ClientVerifier, TrustedIssuer

AUD = "https://icans.example.org/cds-services/icans-risk"
ISS = ISSUER
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key=RSA_KEY, alg="RS384", kid="rsa-1", headers=None, **claims) -> str:
    return client_token(claims.pop("aud", AUD), key, alg, kid, headers, **claims)


@pytest.fixture
def verifier():
    return ClientVerifier([TrustedIssuer(ISS, jwks=JWKS)], AUD)


def test_rs384_and_es384_tokens_are_accepted(verifier):
    assert verifier.verify(token())["sub"] == "ehr-client"
    assert verifier.verify(token(EC_KEY, "ES384", "ec-1"))["iss"] == ISS


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 120, iat=int(time.time()) - 200), "expired"),
        (lambda: token(aud="https://elsewhere.example.org"), "is not the URL called"),
        (lambda: token(iss="https://unknown.example.org"), "not allowed"),
        (lambda: token(kid="nope"), "no single key"),
        (lambda: token(OTHER_KEY), "Signature"),
        (lambda: token(EC_KEY, "ES384", kid="rsa-1"), "ES384 with a RSA key"),
        (lambda: token(exp=int(time.time()) + 3600), "lifetime"),
        (lambda: token(iat=int(time.time()) + 600, exp=int(time.time()) + 700), "iat"),
        (lambda: unsigned_or_hmac_token(AUD, "HS256"), "HS256"),
        (lambda: unsigned_or_hmac_token(AUD, "none"), "'none'"),
        (lambda: "not.a.jwt", "not a valid JWT"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(verifier, make, reason):
    with pytest.raises(ClientAuthError, match=reason):
        verifier.verify(make())


@pytest.mark.parametrize("iss", [[ISS], {"url": ISS}, 7, None])
def test_an_issuer_that_is_not_text_is_refused_as_not_allowed(verifier, iss):
    """``iss`` is a StringOrURI (RFC 7519 4.1.1): a list or object there is no issuer, refused
    as one (a 401), never looked up as a key (a list is unhashable: that was a 500)."""
    now = int(time.time())
    claims = {"iss": iss, "sub": "c", "aud": AUD, "iat": now, "exp": now + 60, "jti": "j"}
    # signed as JWS: PyJWT's encoder itself refuses an iss that is not a string
    signed = jwt.api_jws.encode(
        json.dumps(claims).encode(), RSA_KEY, algorithm="RS384", headers={"kid": "rsa-1"}
    )
    with pytest.raises(ClientAuthError, match="is not allowed"):
        verifier.verify(signed)


def test_a_missing_jti_is_refused(verifier):
    now = int(time.time())
    claims = {"iss": ISS, "sub": "c", "aud": AUD, "iat": now, "exp": now + 60}
    with pytest.raises(ClientAuthError, match="jti"):
        verifier.verify(jwt.encode(claims, RSA_KEY, algorithm="RS384", headers={"kid": "rsa-1"}))


def test_hmac_signed_with_the_public_key_is_refused(verifier):
    """The algorithm-confusion attack: HS384 'signed' with the issuer's public key (built by
    hand: PyJWT itself refuses to make one)."""
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    public = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": ISS, "sub": "x", "aud": AUD, "iat": now, "exp": now + 60, "jti": "j"}
    signing = b64(json.dumps({"alg": "HS384", "typ": "JWT", "kid": "rsa-1"}).encode())
    signing += b"." + b64(json.dumps(claims).encode())
    signature = b64(hmac.new(public, signing, hashlib.sha384).digest())
    with pytest.raises(ClientAuthError, match="HS384"):
        verifier.verify((signing + b"." + signature).decode())


def test_a_replayed_token_is_refused(verifier):
    once = token()
    verifier.verify(once)
    with pytest.raises(ClientAuthError, match="replay"):
        verifier.verify(once)


@pytest.fixture
def jwks_server():
    """A real HTTP server on 127.0.0.1 serving the key set at /jwks.json."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(JWKS).encode()
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_jku_is_used_only_when_allow_listed(jwks_server):
    url = f"{jwks_server}/jwks.json"
    allowed = ClientVerifier([TrustedIssuer(ISS, jku_allowed=(url,))], AUD)
    assert allowed.verify(token(headers={"jku": url}))["iss"] == ISS
    with pytest.raises(ClientAuthError, match="not allow-listed"):
        allowed.verify(token(headers={"jku": f"{jwks_server}/other.json"}))
    broken = ClientVerifier([TrustedIssuer(ISS, jku_allowed=(f"{jwks_server}/gone",))], AUD)
    with pytest.raises(ClientAuthError, match="could not be read"):
        broken.verify(token(headers={"jku": f"{jwks_server}/gone"}))


class KeyServer:
    """A CDS client's key-set server on 127.0.0.1 (real HTTP): serves :attr:`jwks` at
    /jwks.json, which the test changes as the client rotates its keys, or answers 503 while
    :attr:`down`; counts the fetches."""

    def __init__(self, jwks: dict):
        self.jwks, self.down, self.fetches = jwks, False, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                status = 503 if outer.down else 200
                body = json.dumps(outer.jwks).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve = self.server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def rotating():
    """The key server with the client's first key, ``rsa-1``; a verifier trusting its URL,
    whose clock the test moves (``clock[0]``): refetch at most every 10 s, sets refreshed at
    300 s, a stale set used until 3600 s."""
    from fhir_fixtures import jwk

    server = KeyServer({"keys": [jwk(RSA_KEY, "rsa-1")]})
    clock = [time.time()]
    verifier = ClientVerifier(
        [TrustedIssuer(ISS, jku_allowed=(server.url,))],
        AUD,
        clock=lambda: clock[0],
        refetch_interval_s=10,
        max_age_s=300,
        max_stale_s=3600,
    )
    yield server, verifier, clock
    server.server.shutdown()


def test_a_rotated_key_is_fetched_when_first_named_and_the_old_one_dropped_on_refresh(rotating):
    from fhir_fixtures import jwk

    server, verifier, clock = rotating
    signed = {
        kid: lambda kid=kid, key=key: token(key, kid=kid, headers={"jku": server.url})
        for kid, key in (("rsa-1", RSA_KEY), ("rsa-2", OTHER_KEY))
    }
    assert verifier.verify(signed["rsa-1"]())["iss"] == ISS
    assert server.fetches == 1
    # the client publishes its new key beside the old one, then signs with it
    server.jwks = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(OTHER_KEY, "rsa-2")]}
    clock[0] += 30
    assert verifier.verify(signed["rsa-2"]())["iss"] == ISS
    assert server.fetches == 2
    assert verifier.verify(signed["rsa-1"]())["iss"] == ISS  # both keys for now
    assert server.fetches == 2  # known kids: no fetch
    # the old key is withdrawn: still trusted until the cached set is refreshed...
    server.jwks = {"keys": [jwk(OTHER_KEY, "rsa-2")]}
    clock[0] += 200
    assert verifier.verify(signed["rsa-1"]())["iss"] == ISS
    assert server.fetches == 2
    clock[0] += 101  # ...which is 300 s after the last fetch, on the next use
    with pytest.raises(ClientAuthError, match="no single key for kid 'rsa-1'"):
        verifier.verify(signed["rsa-1"]())
    assert server.fetches == 3
    assert verifier.verify(signed["rsa-2"]())["iss"] == ISS
    assert server.fetches == 3


def test_a_flood_of_unknown_kids_fetches_the_key_set_at_most_once_per_interval(rotating):
    server, verifier, clock = rotating
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    assert server.fetches == 1

    def flood(n: int) -> list[str]:
        """``n`` tokens with kids never published, 8 threads at once; the refusals."""

        def one(i: int) -> str:
            with pytest.raises(ClientAuthError) as err:
                verifier.verify(token(kid=f"made-up-{i}", headers={"jku": server.url}))
            return str(err.value)

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(n)))

    refusals = flood(200)
    assert server.fetches == 1  # within 10 s of the first fetch: none
    assert all("no single key for kid 'made-up-" in r for r in refusals)
    clock[0] += 10
    flood(200)
    assert server.fetches == 2  # one per interval, whatever the number of tokens
    clock[0] += 9.9
    flood(50)
    assert server.fetches == 2
    clock[0] += 0.2
    flood(50)
    assert server.fetches == 3
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS  # known kid: fine


def test_a_failed_refresh_keeps_the_old_set_until_it_is_too_old(rotating):
    server, verifier, clock = rotating
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    server.down = True
    clock[0] += 301  # due for a refresh, which fails: the set fetched before still serves
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    assert server.fetches == 2
    clock[0] += 3000  # 3301 s: tried again (every 10 s at most), still the old set
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    assert server.fetches == 3
    clock[0] += 300  # 3601 s after the last successful fetch: refused, saying why
    with pytest.raises(ClientAuthError, match=r"could not be read \(HTTP Error 503"):
        verifier.verify(token(headers={"jku": server.url}))
    assert server.fetches == 4
    server.down = False
    clock[0] += 10
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    assert server.fetches == 5


def test_a_key_server_down_at_first_use_is_asked_again_only_after_the_interval(rotating):
    server, verifier, clock = rotating
    server.down = True
    for _ in range(3):
        with pytest.raises(ClientAuthError, match="could not be read"):
            verifier.verify(token(headers={"jku": server.url}))
    assert server.fetches == 1
    server.down = False
    clock[0] += 10
    assert verifier.verify(token(headers={"jku": server.url}))["iss"] == ISS
    assert server.fetches == 2


def test_a_replay_is_refused_across_processes_sharing_the_sqlite_cache(tmp_path):
    """Each worker process opens its own connection to the same file (as two caches here)."""
    from serving.cds.client_auth import SqliteReplayCache

    a, b = SqliteReplayCache(tmp_path / "jti.sqlite"), SqliteReplayCache(tmp_path / "jti.sqlite")
    now = time.time()
    assert a.first_use("iss|1", now + 60, now)
    assert not b.first_use("iss|1", now + 60, now)
    assert b.first_use("iss|2", now + 60, now)
    assert a.first_use("iss|1", now + 200, now + 120)  # expired entries are forgotten


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[client]]\njwks_file = "keys.json"\n', "iss"),
        ('[[client]]\niss = "https://a"\n', "jwks_file"),
        ('[[client]]\niss = "https://a"\njwks_file = "missing.json"\n', "jwks_file"),
        ('[[client]]\niss = "https://a"\njku = ["ftp://x"]\n', "jku"),
        (
            '[[client]]\niss = "https://a"\njwks_file = "keys.json"\nfhir_servers = "x"\n',
            "fhir_servers",
        ),
        ("[[client]\n", "cds_clients"),
    ],
)
def test_a_bad_clients_file_names_the_client_and_field(tmp_path, text, field):
    from icans.errors import InvalidInputError
    from serving.cds.client_auth import load_clients

    (tmp_path / "keys.json").write_text(json.dumps(JWKS))
    (tmp_path / "clients.toml").write_text(text)
    with pytest.raises(InvalidInputError) as err:
        load_clients(tmp_path / "clients.toml")
    assert err.value.field == field


def test_a_clients_file_is_read(tmp_path):
    from serving.cds.client_auth import load_clients

    (tmp_path / "keys.json").write_text(json.dumps(JWKS))
    (tmp_path / "clients.toml").write_text(
        '[[client]]\niss = "https://ehr.example.org"\njwks_file = "keys.json"\n'
        'fhir_servers = ["https://ehr.example.org/fhir/"]\n'
    )
    (client,) = load_clients(tmp_path / "clients.toml")
    assert client.fhir_servers == ("https://ehr.example.org/fhir",)
    verifier = ClientVerifier([client], AUD)
    assert verifier.verify(token())["iss"] == ISS


def test_card_thresholds_must_be_ordered():
    from icans.config import load_settings
    from icans.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="cds_warning_at"):
        load_settings(cds_warning_at=0.3, cds_critical_at=0.2)
