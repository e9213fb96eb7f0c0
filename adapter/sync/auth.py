"""How the adapter authenticates to a FHIR server: ``httpx.Auth`` flows for an
``httpx.AsyncClient``, and the keys an operator registers with the server.

Policy decided here:

* SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html, with
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html): a
  ``client_credentials`` grant authenticated by a ``private_key_jwt`` client assertion
  (RFC 7523) signed RS384 or ES384, with ``iss`` = ``sub`` = the client id, ``aud`` = the token
  URL, ``exp`` at most five minutes ahead, a fresh ``jti`` and the ``kid`` header (``jku``
  when configured). The token URL, when not configured, is the ``token_endpoint`` of
  ``{base}/.well-known/smart-configuration``.
* One access token serves every request of a client until shortly before its ``expires_in``
  (a tenth of its life, at most 30 s, early). Concurrent requests share it: one of them fetches
  it while the others wait on an ``asyncio.Lock``.
* A 401 from the FHIR server means the token was revoked or expired early: the token is fetched
  again (unless another request already did) and the request sent once more, exactly once. A
  second 401 goes back to the caller: the client is not authorised, and retrying won't help.
  A retried request must have a body httpx can send twice (bytes, not a one-shot stream).
* A refusal of the token endpoint is an :class:`AuthError` carrying its OAuth ``error`` and
  ``error_description`` (RFC 6749 section 5.2), never the assertion nor a token; an answer that
  is not a bearer token with ``access_token`` and ``expires_in`` (both required by SMART) is one
  too.
* Our public keys are published as a JWKS (RFC 7517) whose ``kid`` is each key's RFC 7638
  thumbprint, the same ``kid`` the assertion names unless the configuration names another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ..errors import AuthError
from .config import (
    BearerAuth,
    NoAuth,
    ServerConfig,
    SigningAlg,
    SigningKey,
    SmartBackendAuth,
    load_signing_key,
)

__all__ = [
    "ASSERTION_TYPE",
    "SmartBackendServices",
    "StaticBearer",
    "auth_for",
    "generate_key",
    "jwks",
    "public_jwk",
    "thumbprint",
]

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_EARLY_S: Final = 30.0  # refresh a token this long before it expires, at most
_RSA_BITS: Final = 3072  # NIST SP 800-57: good beyond 2030
VerifyingKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
Clock: TypeAlias = Callable[[], float]


class StaticBearer(httpx.Auth):
    """A token given once (RFC 6750): for test servers and gateways that issue static keys."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "StaticBearer(token=...)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # by the flow's clock


#: a request, and what takes its answer (and returns the access token, once there is one)
_Exchange: TypeAlias = tuple[httpx.Request, Callable[[httpx.Response], str | None]]


class SmartBackendServices(httpx.Auth):
    """SMART Backend Services for one FHIR server, shared by all of a client's requests."""

    def __init__(self, settings: SmartBackendAuth, base_url: str, clock: Clock = time.time) -> None:
        self._settings = settings
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._key = load_signing_key(settings.private_key_file, settings.alg)
        self._kid = settings.kid or public_jwk(self._key)["kid"]
        self._token_url = settings.token_url
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SmartBackendServices(client_id={self._settings.client_id!r}, {self._base_url})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("SMART Backend Services authentication needs an httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refused: str | None = None  # the token the server answered 401 to
        for _ in range(2):
            async with self._lock:
                token = self._good_token(refused)
                while token is None:
                    asked, take = self._next_exchange()
                    answer = yield asked
                    await answer.aread()
                    token = take(answer)
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            if response.status_code != httpx.codes.UNAUTHORIZED:
                return
            refused = token

    def _good_token(self, refused: str | None) -> str | None:
        """The cached token, unless it is due for refresh or the server refused it."""
        token = self._token
        if token is None or token.value == refused or self._clock() >= token.refresh_at:
            return None
        return token.value

    def _next_exchange(self) -> _Exchange:
        """The request that brings a token nearer: discovery first, when the URL is unknown."""
        if self._token_url is None:
            url = f"{self._base_url}/.well-known/smart-configuration"
            headers = {"Accept": "application/json"}
            return httpx.Request("GET", url, headers=headers), self._take_configuration
        return self._token_request(self._token_url), self._take_token

    def _token_request(self, token_url: str) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "scope": self._settings.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(token_url),
        }
        return httpx.Request("POST", token_url, data=form, headers={"Accept": "application/json"})

    def _assertion(self, token_url: str) -> str:
        """A signed, single-use client assertion (RFC 7523 section 3)."""
        client_id = self._settings.client_id
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "exp": int(self._clock()) + self._settings.token_lifetime_s,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self._kid, "typ": "JWT"}
        if self._settings.jku is not None:
            headers["jku"] = self._settings.jku
        try:
            return jwt.encode(claims, self._key, algorithm=self._settings.alg, headers=headers)
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            message = f"the private key cannot sign {self._settings.alg}: {type(e).__name__}"
            raise AuthError(message, source=self._base_url) from e

    def _take_configuration(self, response: httpx.Response) -> str | None:
        url = f"{self._base_url}/.well-known/smart-configuration"
        endpoint = _json(response).get("token_endpoint") if response.is_success else None
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in {"http", "https"}:
            message = (
                f"{url} answered {response.status_code} without a token_endpoint: "
                "configure the server's token_url"
            )
            raise AuthError(message, source=self._base_url)
        self._token_url = endpoint
        return None

    def _take_token(self, response: httpx.Response) -> str:
        """The access token of a token endpoint's answer (SMART: access_token, token_type
        bearer, expires_in), or the endpoint's refusal as an :class:`AuthError`."""
        answer = _json(response)
        if not response.is_success:
            raise AuthError(_refusal(response.status_code, answer), source=self._base_url)
        token, kind, life = (answer.get(k) for k in ("access_token", "token_type", "expires_in"))
        if not isinstance(token, str) or not token:
            problem = "no access_token"
        elif not isinstance(kind, str) or kind.lower() != "bearer":
            problem = "a token_type other than bearer"
        elif not isinstance(life, int) or isinstance(life, bool) or life <= 0:
            problem = "no expires_in (seconds)"
        else:
            early = min(_EARLY_S, life / 10)
            self._token = _Token(token, self._clock() + life - early)
            return token
        message = f"the token endpoint's answer ({response.status_code}) has {problem}"
        raise AuthError(message, source=self._base_url)


def _json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _refusal(status: int, answer: dict[str, Any]) -> str:
    """The OAuth error (RFC 6749 section 5.2) in words an operator can act on."""
    error, description = answer.get("error"), answer.get("error_description")
    if not isinstance(error, str):
        return f"the token endpoint refused the client ({status}) without an OAuth error"
    said = f": {description}" if isinstance(description, str) and description else ""
    return f"the token endpoint refused the client ({status} {error}){said}"


def auth_for(config: ServerConfig, clock: Clock = time.time) -> httpx.Auth:
    """The authentication ``config`` asks for."""
    match config.auth:
        case NoAuth():
            return httpx.Auth()
        case BearerAuth(token=token):
            return StaticBearer(token)
        case SmartBackendAuth() as smart:
            return SmartBackendServices(smart, config.base_url, clock)


def generate_key(alg: SigningAlg) -> tuple[bytes, dict[str, Any]]:
    """A new private key for ``alg`` as unencrypted PKCS#8 PEM (store it mode 0600), and its
    public JWK to register with the server."""
    key: SigningKey
    if alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, public_jwk(key)


def public_jwk(key: SigningKey | VerifyingKey) -> dict[str, Any]:
    """The public half of ``key`` as a JWK for verifying our assertions, its ``kid`` the
    RFC 7638 thumbprint."""
    public = key.public_key() if isinstance(key, SigningKey) else key
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True) | {"alg": "RS384"}
    else:
        jwk = ECAlgorithm.to_jwk(public, as_dict=True) | {"alg": "ES384"}
    jwk |= {"use": "sig", "key_ops": ["verify"]}
    return jwk | {"kid": thumbprint(jwk)}


def jwks(keys: Iterable[SigningKey | VerifyingKey]) -> dict[str, Any]:
    """The JWK Set (RFC 7517 section 5) an operator registers, or serves at a ``jku`` URL."""
    return {"keys": [public_jwk(key) for key in keys]}


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint (SHA-256) of an RSA or EC public JWK."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
