"""The HTTP API's own authentication: JWT bearer tokens against the deployment's JWKS, a scope
per endpoint, checked over a real socket. Each forged or wrong token is refused, and no
answer echoes the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from api_tokens import AUDIENCE, EC_KEY, RSA_KEY, token, write_jwks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from local_service import serving

from adapter.access import AUDIENCE_ENV, JWKS_ENV, SCOPES, Access, read_jwks
from adapter.cli import main
from adapter.disclosure import AUDIT_LOG_ENV
from adapter.errors import OptionsError
from adapter.service import create_app

VCF = Path(__file__).resolve().parent / "data" / "vcf" / "snv.vcf"
FIELDS = {"patient": "p-1", "purpose": "TREAT"}
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jwks(tmp_path_factory.mktemp("keys") / "jwks.json")


@pytest.fixture(scope="module")
def base_url(jwks_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    environ = {JWKS_ENV: str(jwks_file), AUDIENCE_ENV: AUDIENCE}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(AUDIT_LOG_ENV, str(tmp_path_factory.mktemp("audit") / "audit.ndjson"))
        with serving(create_app(Access.from_env(environ))) as base:
            yield base


def _convert(base_url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{base_url}/v1/convert",
        files={"file": ("snv.vcf", VCF.read_bytes(), "text/plain")},
        data=FIELDS,
        headers=headers,
        timeout=60,
    )


def test_health_needs_notoken(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").status_code == 200


@pytest.mark.parametrize(
    ("key", "kid", "alg"), [(RSA_KEY, "rsa-1", "RS384"), (EC_KEY, "ec-1", "ES384")]
)
def test_a_token_signed_by_a_trusted_key_with_the_scope_converts(
    base_url: str, key: Any, kid: str, alg: str
) -> None:
    answer = _convert(base_url, token(key, kid, alg))
    assert answer.status_code == 200, answer.text
    assert answer.json()["resourceType"] == "Bundle"


def _hs256_with_the_public_key() -> str:
    """The classic algorithm confusion: the public key used as an HMAC secret. PyJWT refuses
    to sign with PEM bytes, so the token is built by hand."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    public = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    claims = {"aud": AUDIENCE, "exp": int(time.time()) + 300, "scope": SCOPES["convert"]}
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


REFUSED = {
    "no token": (None, "send a bearer token"),
    "not a JWT": ("abc.def", "not a JWT"),
    "expired": (token(exp=int(time.time()) - 3600), "expired"),
    "another audience": (token(aud="https://elsewhere.test"), "another audience"),
    "no exp": (token(exp=None), "required claim"),
    "untrusted key": (token(OTHER_KEY), "does not verify"),
    "unknown kid": (token(OTHER_KEY, kid="other"), "does not trust"),
    "alg none": (jwt.encode({"aud": AUDIENCE}, None, "none"), "asymmetric"),
    "HS256 with the public key": (_hs256_with_the_public_key(), "asymmetric"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_token_is_a_401_that_echoes_nothing(base_url: str, case: str) -> None:
    token, reason = REFUSED[case]
    answer = _convert(base_url, token)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="fhir-genomics"')
    outcome = answer.json()
    assert outcome["issue"][0]["code"] == "login"
    assert reason in outcome["issue"][0]["diagnostics"]
    if token:
        assert token not in answer.text


def test_a_token_without_the_scope_is_a_403(base_url: str) -> None:
    answer = _convert(base_url, token(scope=SCOPES["jobs.read"]))
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    assert SCOPES["convert"] in answer.json()["issue"][0]["diagnostics"]


def test_scp_list_claims_are_read_too(base_url: str) -> None:
    assert _convert(base_url, token(scope=None, scp=[SCOPES["convert"]])).status_code == 200


def test_without_keys_every_protected_endpoint_refuses(tmp_path: Path) -> None:
    with serving(create_app(Access.from_env({}))) as base:
        answer = _convert(base, token())
    assert answer.status_code == 401
    assert JWKS_ENV in answer.json()["issue"][0]["diagnostics"]


def test_a_jwks_with_a_private_key_is_refused(tmp_path: Path) -> None:
    private = json.loads(jwt.get_algorithm_by_name("RS384").to_jwk(RSA_KEY))
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps({"keys": [private]}))
    with pytest.raises(OptionsError, match="private key"):
        read_jwks(path)


def test_serve_will_not_start_open_unless_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(JWKS_ENV, raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "--no-auth" in capsys.readouterr().err
