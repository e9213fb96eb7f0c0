"""Which FHIR servers the adapter sends to, and how it authenticates to each.

The configuration is a YAML file with one entry per server::

    servers:
      hospital:
        base_url: https://fhir.hospital.example/fhir
        auth:
          type: smart                    # none | bearer | smart
          client_id: fhir-genomics
          private_key_file: keys/smart.pem   # relative to this file's folder
          alg: ES384                     # RS384 | ES384
          kid: my-key-1                  # default: the key's RFC 7638 thumbprint
          scope: system/*.crus
          token_url: null                # null: discovered from .well-known/smart-configuration
          jku: null                      # optional: where the server fetches our JWKS
          token_lifetime_s: 300          # of the client assertion; at most 300
        max_entries: 500                 # per transaction or batch
        concurrency: 4                   # transactions in flight
        timeouts: {connect: 10, read: 120, write: 60, pool: 30}   # seconds
        max_attempts: 6
        backoff_base_s: 0.5
        backoff_cap_s: 60
        transactions: null               # null: learn from the CapabilityStatement
        patient_identifier_system: urn:oid:1.2.3.4.5.1   # the MRN system patients are found by
      test:
        base_url: http://127.0.0.1:8080/fhir
        auth: {type: bearer, token_file: /run/secrets/fhir-token}
      ehr-v2:                            # an EHR that takes genetics only as HL7 v2
        base_url: mllps://ehr.hospital.example:2575  # mllps: over TLS; mllp: plain; port 2575
        tls: {ca_file: certs/ehr-ca.pem, cert_file: certs/us.pem, key_file: certs/us.key}
        timeouts: {connect: 10, read: 120}   # read: how long to wait for the ACK
        hl7v2:
          sending_application: FHIR-GENOMICS   # MSH-3 to MSH-6, each an HD as written
          sending_facility: GENELAB
          receiving_application: EHR
          receiving_facility: HOSPITAL
          authorities: {HOSP: urn:oid:1.2.3.4.5.1}   # namespace ID -> identifier system

Policy decided here:

* The file is strict: an unknown key is an :class:`OptionsError` naming the key and the file,
  so a typo never silently drops a setting (say, the key of the SMART client).
* Secrets stay out of the file and out of logs: a bearer token may be read from
  ``token_file`` and the SMART private key is only ever named by its file; no ``repr`` shows
  a token. The key file is read at load time, so a missing or unusable key (an RSA key of
  fewer than 2048 bits, a curve other than P-384 for ES384) is found before any job runs.
* SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html) client
  assertions are signed RS384 or ES384, the two algorithms servers must support, and expire
  at most five minutes after they are made.

Environment variables override the settings of one server (the one named, the only one in the
file, or a server named ``default`` when there is no file):

* ``FHIR_GENOMICS_SERVER_URL``: ``base_url``.
* ``FHIR_GENOMICS_SERVER_TOKEN``: bearer authentication with this token.
* ``FHIR_GENOMICS_SMART_CLIENT_ID``, ``FHIR_GENOMICS_SMART_KEY_FILE`` (relative to the working
  folder), ``FHIR_GENOMICS_SMART_ALG``, ``FHIR_GENOMICS_SMART_KID``,
  ``FHIR_GENOMICS_SMART_SCOPE``, ``FHIR_GENOMICS_SMART_TOKEN_URL``: SMART Backend Services,
  each replacing that setting of the file's ``auth: {type: smart}`` (or starting one).

A token and SMART settings together are a conflict, and an error.

A server whose ``base_url`` is ``mllp://host:port`` takes reports as HL7 v2.5.1 ORU^R01
messages over MLLP instead of FHIR transactions (:mod:`adapter.sync.mllp_client`);
``mllps://`` is MLLP over TLS (certificate and host name verified; ``tls`` names the CA file
to trust instead of the system's, and a client certificate and key for mutual TLS, all read
at load time so a bad file is found before any job runs). Such a server has no FHIR API, so
it takes no ``auth`` other than ``none`` (MLLP itself has no authentication) and none of the
settings of FHIR pushes (``max_entries``, ``concurrency``, ``transactions``,
``patient_identifier_system``, retries within a send); ``hl7v2`` holds the message header's
applications and facilities and the assigning authorities' namespace IDs, and is taken only
by such a server.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, get_args
from urllib.parse import urlsplit

import httpx
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..errors import OptionsError

__all__ = [
    "SERVERS_ENV",
    "AuthSettings",
    "BearerAuth",
    "Hl7v2Settings",
    "NoAuth",
    "ServerConfig",
    "SigningAlg",
    "SigningKey",
    "SmartBackendAuth",
    "Timeouts",
    "TlsSettings",
    "configured_servers",
    "load_server",
    "load_servers",
    "load_signing_key",
]

SigningAlg: TypeAlias = Literal["RS384", "ES384"]
SigningKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: SMART v2 scopes for what a sync does: create, read, update and search, never delete
DEFAULT_SCOPE: Final = "system/*.crus"
#: the longest life of a client assertion SMART Backend Services allows
MAX_ASSERTION_LIFETIME_S: Final = 300
_MIN_RSA_BITS: Final = 2048  # NIST SP 800-131A Rev. 2: shorter RSA keys may no longer sign
#: the servers file the CLI and the service read unless told
SERVERS_ENV: Final = "FHIR_GENOMICS_SERVERS"
_ENV_URL: Final = "FHIR_GENOMICS_SERVER_URL"
_ENV_TOKEN: Final = "FHIR_GENOMICS_SERVER_TOKEN"  # noqa: S105 (a variable's name)
#: SMART settings by the environment variable that overrides them
_ENV_SMART: Final = {
    "FHIR_GENOMICS_SMART_CLIENT_ID": "client_id",
    "FHIR_GENOMICS_SMART_KEY_FILE": "private_key_file",
    "FHIR_GENOMICS_SMART_ALG": "alg",
    "FHIR_GENOMICS_SMART_KID": "kid",
    "FHIR_GENOMICS_SMART_SCOPE": "scope",
    "FHIR_GENOMICS_SMART_TOKEN_URL": "token_url",
}
_ENVIRONMENT: Final = "the environment"
_MLLP_SCHEMES: Final = ("mllp", "mllps")  # plain, over TLS
#: the port IANA registers for HL7 over MLLP
_MLLP_PORT: Final = 2575
_DEFAULT_NAME: Final = "default"


@dataclass(frozen=True, slots=True)
class NoAuth:
    """No Authorization header: for test servers only."""


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """A static bearer token (RFC 6750); never shown by ``repr``."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SmartBackendAuth:
    """SMART Backend Services: a client_credentials grant with a signed client assertion."""

    client_id: str
    private_key_file: Path
    alg: SigningAlg = "RS384"
    kid: str | None = None  # None: the RFC 7638 thumbprint of the public key
    scope: str = DEFAULT_SCOPE
    token_url: str | None = None  # None: discovered from {base}/.well-known/smart-configuration
    jku: str | None = None
    token_lifetime_s: int = MAX_ASSERTION_LIFETIME_S


AuthSettings: TypeAlias = NoAuth | BearerAuth | SmartBackendAuth


@dataclass(frozen=True, slots=True)
class Timeouts:
    """httpx's four timeouts, in seconds."""

    connect: float = 10.0
    read: float = 120.0  # a transaction of hundreds of entries takes a server a while
    write: float = 60.0
    pool: float = 30.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How an ``mllps://`` server's certificate is trusted, and our certificate for it."""

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # with key_file: mutual TLS
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A client context verifying the server's certificate and host name."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True, slots=True)
class Hl7v2Settings:
    """The MSH of the messages sent to an MLLP server, and how its identifiers are named."""

    sending_application: str = "FHIR-GENOMICS"
    sending_facility: str = ""
    receiving_application: str = "EHR"
    receiving_facility: str = ""
    #: assigning authority namespace ID -> identifier system URI
    authorities: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One FHIR server: where it is, how to authenticate, and how hard to push it."""

    name: str
    base_url: str  # without a trailing slash
    auth: AuthSettings = NoAuth()
    max_entries: int = 500  # per transaction or batch Bundle
    concurrency: int = 4
    timeouts: Timeouts = Timeouts()
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    transactions: bool | None = None  # None: learn from the CapabilityStatement
    patient_identifier_system: str | None = None
    #: set for an ``mllp://`` or ``mllps://`` server, which takes HL7 v2 instead of FHIR
    hl7v2: Hl7v2Settings | None = None
    #: set for an ``mllps://`` server
    tls: TlsSettings | None = None

    def mllp_address(self) -> tuple[str, int]:
        """The host and port of an ``mllp://`` or ``mllps://`` server."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in _MLLP_SCHEMES or parts.hostname is None:
            raise OptionsError(f"{self.base_url} is no mllp:// address", field=self.name)
        return parts.hostname, parts.port or _MLLP_PORT


def load_servers(path: Path) -> dict[str, ServerConfig]:
    """Every server of the configuration file, by name (no environment overrides)."""
    reader = _Reader(str(path), path.parent)
    return {name: reader.server(name, raw) for name, raw in _servers(path, reader).items()}


def load_server(
    path: Path | None, name: str | None = None, env: Mapping[str, str] | None = None
) -> ServerConfig:
    """Server ``name`` of the file at ``path`` (the only one when ``name`` is None), with the
    environment's overrides; with no file, the server the environment describes."""
    env = os.environ if env is None else env
    if path is None:
        reader, servers = _Reader(_ENVIRONMENT, Path.cwd()), {}
    else:
        reader = _Reader(str(path), path.parent)
        servers = _servers(path, reader)
    name = _choose(servers, name, reader, env)
    raw = dict(servers.get(name, {}))
    _override(raw, env, reader)
    return reader.server(name, raw)


def configured_servers(
    path: Path | None = None, name: str | None = None
) -> dict[str, ServerConfig]:
    """The servers a command or the service works with: every server of the file (``path``,
    else ``$FHIR_GENOMICS_SERVERS``) when no ``name`` is given, else the one named, with the
    environment's overrides; with no file, the one server the environment describes."""
    text = os.environ.get(SERVERS_ENV)
    path = path or (Path(text) if text else None)
    if path is not None and name is None:
        return load_servers(path)
    config = load_server(path, name)
    return {config.name: config}


def load_signing_key(path: Path, alg: SigningAlg) -> SigningKey:
    """The unencrypted PEM private key in ``path``, checked to sign ``alg``."""
    where = str(path)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise OptionsError(f"cannot read the private key: {e.strerror}", source=where) from e
    except (ValueError, TypeError) as e:
        message = "is not an unencrypted PEM private key (PKCS#8 or traditional)"
        raise OptionsError(message, source=where) from e
    if alg == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            message = f"an RSA key of {key.key_size} bits: RS384 needs {_MIN_RSA_BITS} or more"
            raise OptionsError(message, source=where)
        return key
    if alg == "ES384" and isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP384R1):
            message = f"an EC key on {key.curve.name}: ES384 needs P-384 (secp384r1)"
            raise OptionsError(message, source=where)
        return key
    kind = "an RSA key" if alg == "RS384" else "an EC P-384 key"
    raise OptionsError(f"{alg} needs {kind}; this file holds another kind", source=where)


def _servers(path: Path, reader: _Reader) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        message = f"cannot read the server configuration: {e.strerror}"
        raise OptionsError(message, source=str(path)) from e
    except yaml.YAMLError as e:
        raise OptionsError(f"not YAML: {e}", source=str(path)) from e
    top = reader.mapping(data, "", {"servers"}, {"servers"})
    servers = reader.mapping(top["servers"], "servers", None, set())
    if not servers:
        raise reader.error("servers", "names no server")
    return {
        str(k): reader.mapping(v, f"servers.{k}", _SERVER_KEYS, {"base_url"})
        for k, v in servers.items()
    }


def _choose(
    servers: Mapping[str, object], name: str | None, reader: _Reader, env: Mapping[str, str]
) -> str:
    """The server the caller means: the one named, else the only one there is."""
    if name is not None:
        if servers and name not in servers:
            raise reader.error("servers", f"no server {name!r} (known: {', '.join(servers)})")
        return name
    if len(servers) > 1:
        raise reader.error("servers", f"name the server to use, one of: {', '.join(servers)}")
    if servers:
        return next(iter(servers))
    if not env.get(_ENV_URL):
        message = f"no FHIR server configured: give a server configuration file or set {_ENV_URL}"
        raise OptionsError(message)
    return _DEFAULT_NAME


def _override(raw: dict[str, Any], env: Mapping[str, str], reader: _Reader) -> None:
    """The environment's settings over the file's, each remembered as coming from its variable."""
    if url := env.get(_ENV_URL):
        raw["base_url"] = url
        reader.origins["base_url"] = _ENV_URL
    smart = {key: env[var] for var, key in _ENV_SMART.items() if env.get(var)}
    if (token := env.get(_ENV_TOKEN)) and smart:
        message = f"{_ENV_TOKEN} and FHIR_GENOMICS_SMART_* both set: choose one way to authenticate"
        raise OptionsError(message, source=_ENVIRONMENT)
    if token:
        raw["auth"] = {"type": "bearer", "token": token}
        reader.origins["auth.token"] = _ENV_TOKEN
    if smart:
        auth = raw.get("auth")
        if not (isinstance(auth, Mapping) and auth.get("type") == "smart"):
            auth = {"type": "smart"}
        raw["auth"] = {**auth, **smart}
        if "private_key_file" in smart:
            raw["auth"]["private_key_file"] = str(Path(smart["private_key_file"]).absolute())
        for var, key in _ENV_SMART.items():
            if key in smart:
                reader.origins[f"auth.{key}"] = var


_SERVER_KEYS: Final = {
    "base_url",
    "auth",
    "max_entries",
    "concurrency",
    "timeouts",
    "max_attempts",
    "backoff_base_s",
    "backoff_cap_s",
    "transactions",
    "patient_identifier_system",
    "hl7v2",
    "tls",
}
#: settings of FHIR pushes, which an MLLP server does not take
_FHIR_ONLY_KEYS: Final = (
    "max_entries",
    "concurrency",
    "max_attempts",
    "backoff_base_s",
    "backoff_cap_s",
    "transactions",
    "patient_identifier_system",
)
_HL7V2_KEYS: Final = {f.name for f in fields(Hl7v2Settings)}
_TLS_KEYS: Final = {f.name for f in fields(TlsSettings)}
_SMART_KEYS: Final = {"type", *_ENV_SMART.values(), "jku", "token_lifetime_s"}
_BEARER_KEYS: Final = {"type", "token", "token_file"}


class _Reader:
    """Checks each setting as it reads it, naming the setting (or the environment variable it
    came from) in every error."""

    def __init__(self, source: str, folder: Path) -> None:
        self.source = source
        self.folder = folder  # relative file names are relative to the configuration file
        self.origins: dict[str, str] = {}  # setting -> the environment variable that set it
        self.at = ""

    def server(self, name: str, raw: dict[str, Any]) -> ServerConfig:
        self.at = f"servers.{name}" if self.source != _ENVIRONMENT else ""
        if "base_url" not in raw:
            raise self.error("base_url", "is required: the server's FHIR base URL")
        if urlsplit(str(raw["base_url"])).scheme in _MLLP_SCHEMES:
            return self.mllp_server(name, raw)
        for key in ("hl7v2", "tls"):
            if key in raw:
                raise self.error(key, "is for an mllp:// server; this one speaks FHIR")
        defaults = ServerConfig(name, "")
        timeouts = self.timeouts(raw.get("timeouts", {}))
        config = ServerConfig(
            name=name,
            base_url=self.url(raw["base_url"], "base_url"),
            auth=self.auth(raw.get("auth", {"type": "none"})),
            max_entries=self.count(raw.get("max_entries", defaults.max_entries), "max_entries"),
            concurrency=self.count(raw.get("concurrency", defaults.concurrency), "concurrency"),
            timeouts=timeouts,
            max_attempts=self.count(raw.get("max_attempts", defaults.max_attempts), "max_attempts"),
            backoff_base_s=self.seconds(
                raw.get("backoff_base_s", defaults.backoff_base_s), "backoff_base_s"
            ),
            backoff_cap_s=self.seconds(
                raw.get("backoff_cap_s", defaults.backoff_cap_s), "backoff_cap_s"
            ),
            transactions=self.tristate(raw.get("transactions"), "transactions"),
            patient_identifier_system=self.optional_text(
                raw.get("patient_identifier_system"), "patient_identifier_system"
            ),
        )
        if config.backoff_cap_s < config.backoff_base_s:
            raise self.error("backoff_cap_s", "is less than backoff_base_s")
        return config

    def mllp_server(self, name: str, raw: dict[str, Any]) -> ServerConfig:
        """A server taking HL7 v2 over MLLP: its address, timeouts and message header."""
        for key in _FHIR_ONLY_KEYS:
            if key in raw:
                raise self.error(key, "is a setting of FHIR pushes: an mllp:// server has none")
        if not isinstance(self.auth(raw.get("auth", {"type": "none"})), NoAuth):
            given = next((k for k in self.origins if k.startswith("auth.")), "auth")
            raise self.error(given, "MLLP has no authentication: an mllp:// server takes none")
        base_url = self.mllp_url(raw["base_url"])
        secure = base_url.startswith("mllps:")
        if "tls" in raw and not secure:
            raise self.error("tls", "is for an mllps:// server (MLLP over TLS)")
        return ServerConfig(
            name=name,
            base_url=base_url,
            timeouts=self.timeouts(raw.get("timeouts", {})),
            hl7v2=self.hl7v2(raw.get("hl7v2", {})),
            tls=self.tls(raw.get("tls", {})) if secure else None,
        )

    def tls(self, data: object) -> TlsSettings:
        given = self.mapping(data, self.path("tls"), _TLS_KEYS, set())
        files = {k: self.folder / self.text(v, f"tls.{k}") for k, v in given.items()}
        if ("cert_file" in files) != ("key_file" in files):
            raise self.error("tls", "give cert_file and key_file together (mutual TLS)")
        settings = TlsSettings(**files)
        # the CA file alone first, so that an error names the file at fault
        for key, trial in (("ca_file", TlsSettings(settings.ca_file)), ("cert_file", settings)):
            try:
                trial.context()
            except (OSError, ssl.SSLError) as e:
                raise self.error(f"tls.{key}", f"{files[key]}: cannot be used: {e}") from e
        return settings

    def mllp_url(self, value: object) -> str:
        parts = urlsplit(str(value))
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1 or parts.path.strip("/") or parts.query:
            raise self.error("base_url", f"{value!r} is not mllp://host or mllp://host:port")
        return f"{parts.scheme}://{parts.netloc}"

    def hl7v2(self, data: object) -> Hl7v2Settings:
        given = self.mapping(data, self.path("hl7v2"), _HL7V2_KEYS, set())
        names = {
            k: self.header_value(v, f"hl7v2.{k}") for k, v in given.items() if k != "authorities"
        }
        authorities = self.mapping(
            given.get("authorities", {}), self.path("hl7v2.authorities"), None, set()
        )
        systems = {str(k): self.text(v, f"hl7v2.authorities.{k}") for k, v in authorities.items()}
        return Hl7v2Settings(**names, authorities=systems)

    def header_value(self, value: object, at: str) -> str:
        """An HD of the MSH, which may be empty but cannot end or split a field."""
        if not isinstance(value, str) or any(c in value for c in "|~\\\r\n"):
            raise self.error(at, "must be a string without |, ~, \\ or a line break")
        return value

    def auth(self, data: object) -> AuthSettings:
        kind = data.get("type") if isinstance(data, Mapping) else None
        if kind == "none":
            self.mapping(data, self.path("auth"), {"type"}, {"type"})
            return NoAuth()
        if kind == "bearer":
            return self.bearer(self.mapping(data, self.path("auth"), _BEARER_KEYS, {"type"}))
        if kind == "smart":
            keys = {"type", "client_id", "private_key_file"}
            return self.smart(self.mapping(data, self.path("auth"), _SMART_KEYS, keys))
        raise self.error("auth.type", f"{kind!r} is not one of: none, bearer, smart")

    def bearer(self, data: dict[str, Any]) -> BearerAuth:
        if ("token" in data) == ("token_file" in data):
            raise self.error("auth", "give either token or token_file (a file holding the token)")
        if "token" in data:
            return BearerAuth(self.token(data["token"], "auth.token"))
        path = self.folder / self.text(data["token_file"], "auth.token_file")
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise self.error("auth.token_file", f"cannot read {path}: {e.strerror}") from e
        return BearerAuth(self.token(token, "auth.token_file"))

    def smart(self, data: dict[str, Any]) -> SmartBackendAuth:
        alg = data.get("alg", "RS384")
        if alg not in get_args(SigningAlg):
            raise self.error(
                "auth.alg", f"{alg!r} is not one of: {', '.join(get_args(SigningAlg))}"
            )
        key_file = self.folder / self.text(data["private_key_file"], "auth.private_key_file")
        try:
            load_signing_key(key_file, alg)
        except OptionsError as e:
            raise self.error("auth.private_key_file", f"{key_file}: {e.message}") from e
        lifetime = self.count(
            data.get("token_lifetime_s", MAX_ASSERTION_LIFETIME_S), "auth.token_lifetime_s"
        )
        if lifetime > MAX_ASSERTION_LIFETIME_S:
            message = f"{lifetime} s is longer than the {MAX_ASSERTION_LIFETIME_S} s SMART allows"
            raise self.error("auth.token_lifetime_s", message)
        return SmartBackendAuth(
            client_id=self.text(data["client_id"], "auth.client_id"),
            private_key_file=key_file,
            alg=alg,
            kid=self.optional_text(data.get("kid"), "auth.kid"),
            scope=self.text(data.get("scope", DEFAULT_SCOPE), "auth.scope"),
            token_url=self.optional_url(data.get("token_url"), "auth.token_url"),
            jku=self.optional_url(data.get("jku"), "auth.jku"),
            token_lifetime_s=lifetime,
        )

    def timeouts(self, data: object) -> Timeouts:
        given = self.mapping(data, self.path("timeouts"), {f.name for f in fields(Timeouts)}, set())
        return Timeouts(**{k: self.seconds(v, f"timeouts.{k}") for k, v in given.items()})

    def mapping(
        self, data: object, at: str, keys: set[str] | None, required: set[str]
    ) -> dict[str, Any]:
        """A mapping of no other keys than ``keys`` (any, when None), holding ``required``."""
        where = at or "the file"
        if not isinstance(data, Mapping):
            raise self.error(at or None, f"{where} must be a mapping of keys to values", full=True)
        if keys is not None and (unknown := sorted(set(map(str, data)) - keys)):
            message = f"unknown key {unknown[0]!r} in {where} (known: {', '.join(sorted(keys))})"
            raise self.error(_join(at, unknown[0]), message, full=True)
        if missing := sorted(required - set(data)):
            raise self.error(
                _join(at, missing[0]), f"{where} lacks the key {missing[0]!r}", full=True
            )
        return dict(data)

    def url(self, value: object, at: str) -> str:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
            raise self.error(at, f"{value!r} is not an http(s) URL")
        return str(value).rstrip("/")

    def optional_url(self, value: object, at: str) -> str | None:
        return None if value is None else self.url(value, at)

    def count(self, value: object, at: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(at, f"{value!r} is not a whole number of 1 or more")
        return value

    def seconds(self, value: object, at: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise self.error(at, f"{value!r} is not a number of seconds above 0")
        return float(value)

    def tristate(self, value: object, at: str) -> bool | None:
        if value is not None and not isinstance(value, bool):
            raise self.error(at, f"{value!r} is not true, false or null (ask the server)")
        return value

    def text(self, value: object, at: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(at, "must be a non-empty string")
        return value.strip()

    def optional_text(self, value: object, at: str) -> str | None:
        return None if value is None else self.text(value, at)

    def token(self, value: object, at: str) -> str:
        """A token fit for an Authorization header; the error never repeats it."""
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.error(at, "the token must be one word without spaces or line breaks")
        return value

    def path(self, key: str) -> str:
        return _join(self.at, key)

    def error(self, key: str | None, message: str, *, full: bool = False) -> OptionsError:
        """An error naming the setting, or the environment variable that gave its value.
        ``full``: ``key`` is already the whole path in the file."""
        if key is not None and (variable := self.origins.get(key)):
            return OptionsError(message, source=_ENVIRONMENT, field=variable)
        where = key if full or key is None else self.path(key)
        return OptionsError(message, source=self.source, field=where or None)


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key
