"""CDS client JWTs (``serving.client_auth``): real keys and signatures made here, a real HTTP
server on 127.0.0.1 for the ``jku`` key set; every bad token refused with its reason."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from serving.client_auth import ClientAuthError, ClientVerifier, TrustedIssuer

AUD = "https://icans.example.org/cds-services/icans-risk"
ISS = "https://ehr.example.org"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key, kid: str) -> dict:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid}


JWKS = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]}


def token(key=RSA_KEY, alg="RS384", kid="rsa-1", headers=None, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": ISS,
        "sub": "client-1",
        "aud": AUD,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    } | claims
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} | (headers or {}))


@pytest.fixture
def verifier():
    return ClientVerifier([TrustedIssuer(ISS, jwks=JWKS)], AUD)


def test_rs384_and_es384_tokens_are_accepted(verifier):
    assert verifier.verify(token())["sub"] == "client-1"
    assert verifier.verify(token(EC_KEY, "ES384", "ec-1"))["iss"] == ISS


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 120, iat=int(time.time()) - 200), "expired"),
        (lambda: token(aud="https://elsewhere.example.org"), "(?i)audience"),
        (lambda: token(iss="https://unknown.example.org"), "not allowed"),
        (lambda: token(kid="nope"), "no single key"),
        (lambda: token(OTHER_KEY), "Signature"),
        (lambda: token(exp=int(time.time()) + 3600), "lifetime"),
        (lambda: token(iat=int(time.time()) + 600, exp=int(time.time()) + 700), "iat"),
        (lambda: jwt.encode({"iss": ISS, "aud": AUD}, "s" * 32, algorithm="HS256"), "HS256"),
        (lambda: jwt.encode({"iss": ISS, "aud": AUD}, None, algorithm="none"), "'none'"),
        (lambda: "not.a.jwt", "not a valid JWT"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(verifier, make, reason):
    with pytest.raises(ClientAuthError, match=reason):
        verifier.verify(make())


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
