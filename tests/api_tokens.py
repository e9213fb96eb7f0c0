"""Keys a test deployment trusts, and bearer tokens signed by them, for the API's own auth."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.access import SCOPES

AUDIENCE = "https://genomics.hospital.test"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def write_jwks(path: Path) -> Path:
    """The deployment's JWKS: the RSA and the EC key's public halves."""
    keys = [public_jwk(RSA_KEY, "rsa-1", "RS384"), public_jwk(EC_KEY, "ec-1", "ES384")]
    path.write_text(json.dumps({"keys": keys}))
    return path


def token(key: Any = RSA_KEY, kid: str | None = "rsa-1", alg: str = "RS384", **claims: Any) -> str:
    """A token for the test audience, valid five minutes, with the convert and decide scopes
    unless ``scope`` says otherwise; a claim given as None is left out."""
    now = int(time.time())
    body = {
        "sub": "mirth-channel-7",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "scope": f"{SCOPES['convert']} {SCOPES['decide']}",
    }
    headers = {"kid": kid} if kid else {}
    return jwt.encode(
        {k: v for k, v in (body | claims).items() if v is not None}, key, alg, headers=headers
    )
