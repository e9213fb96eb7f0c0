"""Who may call the HTTP API: bearer tokens (RFC 6750) that are JWTs (RFC 7519) signed by a
key the deployment trusts, and one scope per endpoint.

Policy:

* **Keys are the deployment's**: a JWKS file (RFC 7517) named by ``$FHIR_GENOMICS_API_JWKS``.
  Only asymmetric signatures are accepted (RS/PS 256-512, ES256/384/512); ``none`` and HMAC are
  refused, so a public key can never be used as a shared secret (algorithm confusion).
* **Claims checked**: ``exp`` is required; ``nbf`` and ``iat`` are honoured, with 30 s of
  clock leeway; ``aud`` must be ``$FHIR_GENOMICS_API_AUDIENCE`` (default ``fhir-genomics``),
  and ``iss`` must be ``$FHIR_GENOMICS_API_ISSUER`` when that is set.
* **Scopes** come from ``scope`` (space-separated, RFC 8693) or ``scp`` (a list); each endpoint
  requires one of :data:`SCOPES`. A missing or bad token is a 401, a good token without the
  scope a 403, each with its ``WWW-Authenticate`` challenge.
* **Health needs no token** (``/healthz``): load balancers probe it.
* **No keys, no access**: a service started without a JWKS answers 401 on every protected
  endpoint, unless it was started open on purpose (:meth:`Access.open`, the CLI's
  ``serve --no-auth``) for local trials.
* Nothing of a token is logged or echoed: errors say what was wrong, not what was sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
import orjson

from .errors import AccessError, InsufficientScope, OptionsError

__all__ = ["SCOPES", "Access", "Principal"]

JWKS_ENV, AUDIENCE_ENV, ISSUER_ENV = (
    "FHIR_GENOMICS_API_JWKS",
    "FHIR_GENOMICS_API_AUDIENCE",
    "FHIR_GENOMICS_API_ISSUER",
)
DEFAULT_AUDIENCE: Final = "fhir-genomics"
ASYMMETRIC: Final = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
)  # fmt: skip
LEEWAY_S: Final = 30
#: the scope each protected endpoint requires
SCOPES: Final = {
    "convert": "genomics/convert",
    "decide": "genomics/decide",
    "jobs.read": "genomics/jobs.read",
    "jobs.write": "genomics/jobs.write",
    "notify": "genomics/notify",
    "metrics": "genomics/metrics.read",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a token names: its subject (a client id, never a patient) and scopes."""

    subject: str
    scopes: frozenset[str]


class Access:
    """The deployment's token check; :meth:`require` makes one per endpoint."""

    def __init__(
        self,
        keys: jwt.PyJWKSet | None,
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str | None = None,
    ) -> None:
        self._keys = keys
        self._audience, self._issuer = audience, issuer

    @classmethod
    def open(cls) -> Access:
        """Every caller allowed: for a trial on one's own machine, never a deployment."""
        return _Open(None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Access:
        path = environ.get(JWKS_ENV)
        keys = read_jwks(Path(path)) if path else None
        return cls(
            keys,
            audience=environ.get(AUDIENCE_ENV) or DEFAULT_AUDIENCE,
            issuer=environ.get(ISSUER_ENV) or None,
        )

    def require(self, endpoint: str) -> Callable[[str | None], Principal]:
        """The check for ``endpoint``: given the Authorization header, the caller or an error."""
        scope = SCOPES[endpoint]

        def check(authorization: str | None) -> Principal:
            principal = self.verify(_bearer(authorization))
            if scope not in principal.scopes:
                raise InsufficientScope(f"this endpoint requires the scope {scope}")
            return principal

        return check

    def verify(self, token: str) -> Principal:
        keys = self._keys
        if keys is None:
            raise AccessError(
                f"the API has no keys to check tokens with: set ${JWKS_ENV} to a JWKS file"
            )
        try:
            header = jwt.get_unverified_header(token)
            key = _trusted_key(keys, header)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]] if header.get("alg") in ASYMMETRIC else [],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AccessError(f"the bearer token is not valid: {_reason(exc)}") from None
        return Principal(str(claims.get("sub", "")), _scopes(claims))


class _Open(Access):
    def verify(self, token: str) -> Principal:
        return Principal("anonymous", frozenset(SCOPES.values()))

    def require(self, endpoint: str) -> Callable[[str | None], Principal]:
        return lambda _authorization: Principal("anonymous", frozenset(SCOPES.values()))


def read_jwks(path: Path) -> jwt.PyJWKSet:
    """The public keys in a JWKS file; a private member is refused (keys must not leak)."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise OptionsError(f"cannot read the JWKS: {exc}", source=str(path)) from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise OptionsError("a JWKS needs a non-empty 'keys' list", source=str(path), field="keys")
    if any(isinstance(k, dict) and "d" in k for k in keys):
        raise OptionsError(
            "the JWKS holds a private key: give the API public keys only",
            source=str(path),
            field="keys",
        )
    try:
        return jwt.PyJWKSet(keys)
    except jwt.PyJWTError as exc:
        raise OptionsError(f"unusable JWKS: {exc}", source=str(path), field="keys") from None


def _trusted_key(keys: jwt.PyJWKSet, header: Mapping[str, Any]) -> jwt.PyJWK:
    if header.get("alg") not in ASYMMETRIC:
        raise jwt.InvalidAlgorithmError("only asymmetric signatures are accepted")
    kid = header.get("kid")
    if kid is None and len(keys.keys) == 1:
        return keys.keys[0]
    for key in keys.keys:
        if key.key_id == kid:
            return key
    raise jwt.InvalidKeyError("signed by a key the API does not trust")


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessError("send a bearer token: 'Authorization: Bearer <JWT>'")
    return token.strip()


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope, scp = claims.get("scope"), claims.get("scp")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scp, list):
        return frozenset(str(s) for s in scp)
    return frozenset()


def _reason(exc: jwt.PyJWTError) -> str:
    """Why, in words that quote nothing of the token."""
    reasons: dict[type[jwt.PyJWTError], str] = {
        jwt.ExpiredSignatureError: "it has expired",
        jwt.ImmatureSignatureError: "it is not valid yet",
        jwt.InvalidAudienceError: "it is for another audience",
        jwt.InvalidIssuerError: "another issuer signed it",
        jwt.MissingRequiredClaimError: "a required claim (exp, aud) is missing",
        jwt.InvalidSignatureError: "its signature does not verify",
        jwt.InvalidAlgorithmError: "only asymmetric signatures are accepted",
        jwt.InvalidKeyError: "signed by a key the API does not trust",
        jwt.DecodeError: "it is not a JWT",
    }
    for kind, text in reasons.items():
        if isinstance(exc, kind):
            return text
    return type(exc).__name__
