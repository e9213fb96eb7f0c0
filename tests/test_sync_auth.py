"""Authentication to FHIR servers: SMART Backend Services against sekmet-fhir's real token
endpoint (RS384 and ES384, discovery, one token for many requests, one refresh after a
revocation), a static bearer token, and the token endpoint's failures (respx)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sekmet_server import Sekmet

from adapter.errors import AuthError
from adapter.sync.auth import (
    ASSERTION_TYPE,
    SmartBackendServices,
    StaticBearer,
    auth_for,
    generate_key,
    jwks,
    public_jwk,
    thumbprint,
)
from adapter.sync.config import BearerAuth, NoAuth, ServerConfig, SigningAlg, SmartBackendAuth

ALGS: tuple[SigningAlg, ...] = ("RS384", "ES384")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[SigningAlg, Path]:
    """A private key file per algorithm."""
    folder = tmp_path_factory.mktemp("keys")
    files = {}
    for alg in ALGS:
        pem, _ = generate_key(alg)
        files[alg] = folder / f"{alg}.pem"
        files[alg].write_bytes(pem)
    return files


@pytest.fixture(scope="module")
def clients(sekmet: Sekmet, keys: dict[SigningAlg, Path]) -> dict[SigningAlg, SmartBackendAuth]:
    """A SMART client registered with sekmet per algorithm, its JWKS from :func:`jwks`."""
    settings = {
        alg: SmartBackendAuth(f"fhir-genomics-{alg.lower()}", path, alg, token_url=sekmet.token_url)
        for alg, path in keys.items()
    }
    sekmet.register(
        {
            smart.client_id: jwks([load_pem_private_key(smart.private_key_file.read_bytes(), None)])
            for smart in settings.values()
        }
    )
    return settings


class Traffic:
    """Counts what a client sent, by URL, and the 401s it got: an httpx event hook pair."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.refused = 0

    async def request(self, request: httpx.Request) -> None:
        self.sent.append(str(request.url.copy_with(query=None)))

    async def response(self, response: httpx.Response) -> None:
        self.refused += response.status_code == 401

    def to(self, url: str) -> int:
        return self.sent.count(url)


def client(base: str, auth: httpx.Auth, traffic: Traffic) -> httpx.AsyncClient:
    hooks = {"request": [traffic.request], "response": [traffic.response]}
    return httpx.AsyncClient(base_url=base, auth=auth, event_hooks=hooks, timeout=30)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- against the real token endpoint -----------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_sekmet_grants_a_token_that_opens_its_fhir_api(
    sekmet: Sekmet, clients: dict[SigningAlg, SmartBackendAuth], alg: SigningAlg
) -> None:
    traffic = Traffic()
    config = ServerConfig("sekmet", sekmet.base, clients[alg])

    async def exchange() -> tuple[httpx.Response, httpx.Response]:
        async with client(sekmet.base, auth_for(config), traffic) as fhir:
            patient = {"resourceType": "Patient", "active": True}
            created = await fhir.post("/Patient", json=patient)
            return created, await fhir.get(f"/Patient/{created.json()['id']}")

    created, read = run(exchange())
    assert created.status_code == 201, created.text
    assert read.status_code == 200 and read.json()["active"] is True
    assert traffic.to(sekmet.token_url) == 1
    refused = httpx.get(f"{sekmet.base}/Patient/{read.json()['id']}")
    assert refused.status_code == 401  # the same read without a token


def test_the_token_url_is_discovered_and_one_token_serves_concurrent_requests(
    sekmet: Sekmet, clients: dict[SigningAlg, SmartBackendAuth]
) -> None:
    traffic = Traffic()
    config = ServerConfig("sekmet", sekmet.base, replace(clients["ES384"], token_url=None))

    async def searches() -> list[httpx.Response]:
        async with client(sekmet.base, auth_for(config), traffic) as fhir:
            first = await asyncio.gather(*(fhir.get("/Patient") for _ in range(8)))
            return [*first, *[await fhir.get("/Patient") for _ in range(4)]]

    answers = run(searches())
    assert [a.status_code for a in answers] == [200] * 12
    assert traffic.to(f"{sekmet.base}/.well-known/smart-configuration") == 1
    assert traffic.to(sekmet.token_url) == 1
    assert traffic.to(f"{sekmet.base}/Patient") == 12


def test_a_revoked_token_is_replaced_once_and_the_request_sent_again(
    sekmet: Sekmet, clients: dict[SigningAlg, SmartBackendAuth]
) -> None:
    traffic = Traffic()
    config = ServerConfig("sekmet", sekmet.base, clients["RS384"])

    async def around_revocation() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with client(sekmet.base, auth_for(config), traffic) as fhir:
            before = await fhir.get("/Patient")
            sekmet.revoke_tokens()
            return before, await fhir.get("/Patient"), await fhir.get("/Patient")

    before, after, later = run(around_revocation())
    assert (before.status_code, after.status_code, later.status_code) == (200, 200, 200)
    assert traffic.refused == 1  # the revoked token, once
    assert traffic.to(sekmet.token_url) == 2
    assert traffic.to(f"{sekmet.base}/Patient") == 4


def test_a_client_sekmet_does_not_know_gets_its_refusal(
    sekmet: Sekmet, clients: dict[SigningAlg, SmartBackendAuth]
) -> None:
    stranger = replace(clients["RS384"], client_id="not-registered")
    config = ServerConfig("sekmet", sekmet.base, stranger)

    async def search() -> httpx.Response:
        async with client(sekmet.base, auth_for(config), Traffic()) as fhir:
            return await fhir.get("/Patient")

    with pytest.raises(AuthError, match=r"\(401 invalid_client\): Unknown client_id") as caught:
        run(search())
    assert caught.value.source == sekmet.base


def test_a_static_bearer_token_opens_sekmet(sekmet: Sekmet) -> None:
    config = ServerConfig("sekmet", sekmet.base, BearerAuth(sekmet.bearer_token))
    wrong = ServerConfig("sekmet", sekmet.base, BearerAuth("not-the-token"))

    async def search(config: ServerConfig) -> httpx.Response:
        async with client(sekmet.base, auth_for(config), Traffic()) as fhir:
            return await fhir.get("/Patient")

    assert run(search(config)).status_code == 200
    assert run(search(wrong)).status_code == 401
    assert sekmet.bearer_token not in repr(auth_for(config))


def test_no_auth_sends_no_authorization_header() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/fhir/Patient")
    flow = auth_for(ServerConfig("open", "http://127.0.0.1/fhir", NoAuth())).sync_auth_flow(request)
    assert "Authorization" not in next(flow).headers


# --- the flow's branches, with a mocked token endpoint -----------------------------------------

BASE = "https://fhir.example.test/fhir"
TOKEN_URL = "https://auth.example.test/token"  # noqa: S105 (a URL)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def es_key(keys: dict[SigningAlg, Path]) -> SmartBackendAuth:
    return SmartBackendAuth("adapter", keys["ES384"], "ES384", token_url=TOKEN_URL)


def granted(token: str, expires_in: int = 300) -> httpx.Response:
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    return httpx.Response(200, json=answer)


def get(auth: httpx.Auth, url: str = f"{BASE}/Patient") -> httpx.Response:
    async def once() -> httpx.Response:
        async with httpx.AsyncClient(auth=auth) as http:
            return await http.get(url)

    response: httpx.Response = run(once())
    return response


def assertion_of(request: httpx.Request) -> tuple[dict[str, Any], str]:
    """The client assertion a token request carried, and that request's grant form."""
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    return form, form["client_assertion"]


@respx.mock
def test_the_assertion_carries_what_smart_requires(
    es_key: SmartBackendAuth, keys: dict[SigningAlg, Path]
) -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[granted("a", 1), granted("b", 300)])
    respx.get(f"{BASE}/Patient").respond(200, json={"resourceType": "Bundle"})
    clock = Clock()
    auth = SmartBackendServices(replace(es_key, jku="https://adapter.test/jwks"), BASE, clock)
    get(auth)
    clock.now += 1  # the first token's life is over
    get(auth)
    public = load_pem_private_key(keys["ES384"].read_bytes(), None).public_key()
    seen = []
    for call in token.calls:
        form, assertion = assertion_of(call.request)
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, public, algorithms=["ES384"], audience=TOKEN_URL)
        assert header["alg"] == "ES384" and header["jku"] == "https://adapter.test/jwks"
        assert header["kid"] == public_jwk(public)["kid"]
        assert claims["iss"] == claims["sub"] == "adapter"
        assert 0 < claims["exp"] - clock.now <= 300
        assert form["scope"] == "system/*.crus"
        seen.append(claims["jti"])
    assert len(seen) == 2 and len(set(seen)) == 2


@respx.mock
def test_a_token_is_refreshed_shortly_before_it_expires(es_key: SmartBackendAuth) -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[granted("a", 600), granted("b", 600)])
    fhir = respx.get(f"{BASE}/Patient").respond(200)
    clock = Clock()
    auth = SmartBackendServices(es_key, BASE, clock)
    get(auth)
    clock.now += 569  # 31 s left: still good
    get(auth)
    clock.now += 2  # 29 s left: due
    get(auth)
    assert token.call_count == 2
    sent = [c.request.headers["Authorization"] for c in fhir.calls]
    assert sent == ["Bearer a", "Bearer a", "Bearer b"]


@respx.mock
def test_a_second_401_goes_back_to_the_caller(es_key: SmartBackendAuth) -> None:
    token = respx.post(TOKEN_URL).mock(side_effect=[granted("a"), granted("b")])
    fhir = respx.get(f"{BASE}/Patient").respond(401, json={"resourceType": "OperationOutcome"})
    response = get(SmartBackendServices(es_key, BASE, Clock()))
    assert response.status_code == 401
    assert token.call_count == 2 and fhir.call_count == 2
    assert [c.request.headers["Authorization"] for c in fhir.calls] == ["Bearer a", "Bearer b"]


@respx.mock
def test_a_refusal_of_the_token_endpoint_is_an_auth_error_without_the_assertion(
    es_key: SmartBackendAuth,
) -> None:
    refusal = {"error": "invalid_client", "error_description": "the key is not registered"}
    token = respx.post(TOKEN_URL).respond(400, json=refusal)
    fhir = respx.get(f"{BASE}/Patient").respond(200)
    with pytest.raises(AuthError) as caught:
        get(SmartBackendServices(es_key, BASE, Clock()))
    message = str(caught.value)
    assert "(400 invalid_client): the key is not registered" in message
    _, assertion = assertion_of(token.calls[0].request)
    assert assertion not in message and assertion.split(".")[2] not in message
    assert caught.value.exit_code == 8 and fhir.call_count == 0


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(200, json={"token_type": "bearer", "expires_in": 60}), "no access_token"),
        (
            httpx.Response(200, json={"access_token": "t", "token_type": "mac", "expires_in": 60}),
            "a token_type other than bearer",
        ),
        (
            httpx.Response(200, json={"access_token": "secret-t", "token_type": "bearer"}),
            "no expires_in",
        ),
        (
            httpx.Response(
                200, json={"access_token": "t", "token_type": "bearer", "expires_in": "1"}
            ),
            "no expires_in",
        ),
        (httpx.Response(200, text="<html>login</html>"), "no access_token"),
        (httpx.Response(502, text="Bad gateway"), r"\(502\) without an OAuth error"),
    ],
)
@respx.mock
def test_a_token_answer_that_is_not_a_bearer_token_is_an_auth_error(
    es_key: SmartBackendAuth, answer: httpx.Response, problem: str
) -> None:
    respx.post(TOKEN_URL).mock(return_value=answer)
    with pytest.raises(AuthError, match=problem) as caught:
        get(SmartBackendServices(es_key, BASE, Clock()))
    assert "secret-t" not in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"resourceType": "OperationOutcome"}),
        httpx.Response(200, json={"authorization_endpoint": f"{BASE}/authorize"}),
        httpx.Response(200, json={"token_endpoint": "token"}),
    ],
)
@respx.mock
def test_a_failed_discovery_asks_for_the_token_url(
    es_key: SmartBackendAuth, answer: httpx.Response
) -> None:
    respx.get(f"{BASE}/.well-known/smart-configuration").mock(return_value=answer)
    auth = SmartBackendServices(replace(es_key, token_url=None), BASE, Clock())
    with pytest.raises(
        AuthError, match="without a token_endpoint: configure the server's token_url"
    ):
        get(auth)


@respx.mock
def test_a_discovered_token_url_is_asked_once(es_key: SmartBackendAuth) -> None:
    discovery = respx.get(f"{BASE}/.well-known/smart-configuration").respond(
        200, json={"token_endpoint": TOKEN_URL}
    )
    token = respx.post(TOKEN_URL).mock(side_effect=[granted("a", 60), granted("b", 60)])
    respx.get(f"{BASE}/Patient").respond(200)
    clock = Clock()
    auth = SmartBackendServices(replace(es_key, token_url=None), BASE, clock)
    get(auth)
    clock.now += 60
    get(auth)
    assert discovery.call_count == 1 and token.call_count == 2
    _, assertion = assertion_of(token.calls[0].request)
    assert jwt.decode(assertion, options={"verify_signature": False})["aud"] == TOKEN_URL


def test_a_sync_client_is_told_to_use_the_async_one(es_key: SmartBackendAuth) -> None:
    with httpx.Client(auth=SmartBackendServices(es_key, BASE)) as http, pytest.raises(TypeError):
        http.get(f"{BASE}/Patient")


def test_a_static_bearer_token_is_sent_as_is() -> None:
    request = next(StaticBearer("abc.def").sync_auth_flow(httpx.Request("GET", BASE)))
    assert request.headers["Authorization"] == "Bearer abc.def"


# --- keys ---------------------------------------------------------------------------------------


def test_the_thumbprint_is_rfc_7638s() -> None:
    """The example of RFC 7638 section 3.1."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
        "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368"
        "QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"
        "d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(("alg", "kty", "size"), [("RS384", "RSA", 3072), ("ES384", "EC", 384)])
def test_a_generated_key_signs_what_its_jwk_verifies(alg: SigningAlg, kty: str, size: int) -> None:
    pem, jwk = generate_key(alg)
    private = load_pem_private_key(pem, None)
    assert private.key_size == size
    assert jwk["kty"] == kty and jwk["alg"] == alg and jwk["kid"] == thumbprint(jwk)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)  # no private member
    public = jwt.PyJWK(jwk).key
    signed = jwt.encode({"sub": "x"}, private, algorithm=alg)
    assert jwt.decode(signed, public, algorithms=[alg]) == {"sub": "x"}
    document = jwks([private, private.public_key()])
    assert json.loads(json.dumps(document)) == {"keys": [jwk, jwk]}
