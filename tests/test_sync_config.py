"""The server configuration: the YAML file, the environment's overrides, and the errors that
name the setting at fault without repeating a secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.errors import OptionsError
from adapter.sync.auth import generate_key
from adapter.sync.config import (
    BearerAuth,
    Hl7v2Settings,
    NoAuth,
    ServerConfig,
    SmartBackendAuth,
    Timeouts,
    load_server,
    load_servers,
)

SECRET = "s3cr3t-token-value"  # noqa: S105 (a test token)
FULL = """\
servers:
  hospital:
    base_url: https://fhir.hospital.test/fhir/
    auth:
      type: smart
      client_id: fhir-genomics
      private_key_file: keys/smart.pem
      alg: ES384
      kid: key-1
      scope: system/Observation.cu
      token_url: https://auth.hospital.test/token
      jku: https://adapter.hospital.test/jwks.json
      token_lifetime_s: 120
    max_entries: 200
    concurrency: 8
    timeouts: {connect: 5, read: 300}
    max_attempts: 3
    backoff_base_s: 1
    backoff_cap_s: 30.5
    transactions: false
    patient_identifier_system: urn:oid:1.2.3.4.5.1
  test:
    base_url: http://127.0.0.1:8080/fhir
    auth: {type: bearer, token_file: token.txt}
  open:
    base_url: http://127.0.0.1:8081/fhir
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A configuration folder: the file, an ES384 key beside it, a token file."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "smart.pem").write_bytes(generate_key("ES384")[0])
    (tmp_path / "token.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    (tmp_path / "servers.yaml").write_text(FULL, encoding="utf-8")
    return tmp_path


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_setting_is_read(folder: Path) -> None:
    servers = load_servers(folder / "servers.yaml")
    assert servers["hospital"] == ServerConfig(
        name="hospital",
        base_url="https://fhir.hospital.test/fhir",
        auth=SmartBackendAuth(
            client_id="fhir-genomics",
            private_key_file=folder / "keys" / "smart.pem",
            alg="ES384",
            kid="key-1",
            scope="system/Observation.cu",
            token_url="https://auth.hospital.test/token",  # noqa: S106 (a URL)
            jku="https://adapter.hospital.test/jwks.json",
            token_lifetime_s=120,
        ),
        max_entries=200,
        concurrency=8,
        timeouts=Timeouts(connect=5, read=300),
        max_attempts=3,
        backoff_base_s=1.0,
        backoff_cap_s=30.5,
        transactions=False,
        patient_identifier_system="urn:oid:1.2.3.4.5.1",
    )
    assert servers["test"].auth == BearerAuth(SECRET)  # from the file, without its line break
    assert servers["open"] == ServerConfig("open", "http://127.0.0.1:8081/fhir", NoAuth())
    timeout = servers["hospital"].timeouts.httpx()
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5, 300, 60, 30)


def test_the_defaults(folder: Path) -> None:
    server = load_server(folder / "servers.yaml", "open", env={})
    assert (server.max_entries, server.concurrency, server.max_attempts) == (500, 4, 6)
    assert (server.transactions, server.patient_identifier_system) == (None, None)
    smart = SmartBackendAuth("c", Path("k.pem"))
    assert (smart.alg, smart.scope, smart.token_lifetime_s, smart.token_url) == (
        "RS384",
        "system/*.crus",
        300,
        None,
    )


def test_secrets_are_not_shown(folder: Path) -> None:
    servers = load_servers(folder / "servers.yaml")
    assert SECRET not in repr(servers) and SECRET not in str(servers["test"])
    key = (folder / "keys" / "smart.pem").read_text(encoding="ascii")
    body = key.splitlines()[1]
    assert body not in repr(servers)


def test_the_environment_overrides_one_server(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder / "keys")
    (folder / "keys" / "rsa.pem").write_bytes(generate_key("RS384")[0])
    env = {
        "FHIR_GENOMICS_SERVER_URL": "https://other.hospital.test/r4",
        "FHIR_GENOMICS_SMART_KEY_FILE": "rsa.pem",  # relative to the working folder
        "FHIR_GENOMICS_SMART_ALG": "RS384",
        "FHIR_GENOMICS_SMART_KID": "key-2",
        "FHIR_GENOMICS_SMART_SCOPE": "system/*.rs",
        "FHIR_GENOMICS_SMART_TOKEN_URL": "https://auth.other.test/token",
    }
    server = load_server(folder / "servers.yaml", "hospital", env)
    assert server.base_url == "https://other.hospital.test/r4"
    assert server.auth == SmartBackendAuth(
        client_id="fhir-genomics",  # the file's
        private_key_file=folder / "keys" / "rsa.pem",
        alg="RS384",
        kid="key-2",
        scope="system/*.rs",
        token_url="https://auth.other.test/token",  # noqa: S106 (a URL)
        jku="https://adapter.hospital.test/jwks.json",  # the file's
        token_lifetime_s=120,
    )
    assert server.max_entries == 200


def test_a_token_in_the_environment_replaces_the_files_auth(folder: Path) -> None:
    env = {"FHIR_GENOMICS_SERVER_TOKEN": "env-token"}
    assert load_server(folder / "servers.yaml", "hospital", env).auth == BearerAuth("env-token")


def test_the_environment_alone_describes_a_server(folder: Path) -> None:
    env = {
        "FHIR_GENOMICS_SERVER_URL": "http://127.0.0.1:9/fhir",
        "FHIR_GENOMICS_SMART_CLIENT_ID": "adapter",
        "FHIR_GENOMICS_SMART_KEY_FILE": str(folder / "keys" / "smart.pem"),
        "FHIR_GENOMICS_SMART_ALG": "ES384",
    }
    server = load_server(None, env=env)
    assert server.name == "default" and server.base_url == "http://127.0.0.1:9/fhir"
    assert isinstance(server.auth, SmartBackendAuth) and server.auth.client_id == "adapter"
    with pytest.raises(OptionsError, match="set FHIR_GENOMICS_SERVER_URL"):
        load_server(None, env={})


def test_a_token_and_smart_settings_together_conflict(folder: Path) -> None:
    env = {"FHIR_GENOMICS_SERVER_TOKEN": "t", "FHIR_GENOMICS_SMART_CLIENT_ID": "c"}
    with pytest.raises(OptionsError, match="choose one way to authenticate"):
        load_server(folder / "servers.yaml", "hospital", env)


def test_the_server_must_be_named_when_there_are_several(folder: Path) -> None:
    with pytest.raises(OptionsError, match="one of: hospital, test, open") as several:
        load_server(folder / "servers.yaml", env={})
    with pytest.raises(OptionsError, match="no server 'nope'") as unknown:
        load_server(folder / "servers.yaml", "nope", env={})
    assert several.value.source == unknown.value.source == str(folder / "servers.yaml")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("server:\n  a: {base_url: 'http://h/fhir'}\n", "server"),
        ("servers:\n  a: {base_url: 'http://h/fhir', max_entry: 5}\n", "servers.a.max_entry"),
        (
            "servers:\n  a: {base_url: 'http://h/fhir', auth: {type: bearer, token: t, tokn: u}}\n",
            "servers.a.auth.tokn",
        ),
        (
            "servers:\n  a: {base_url: 'http://h/fhir', timeouts: {connect: 1, total: 9}}\n",
            "servers.a.timeouts.total",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_file(tmp_path: Path, text: str, field: str) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(
        OptionsError, match=f"unknown key '{field.rsplit('.', maxsplit=1)[-1]}'"
    ) as caught:
        load_servers(path)
    assert (caught.value.source, caught.value.field) == (str(path), field)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ("{}", "servers.a.base_url", "lacks the key 'base_url'"),
        ("{base_url: 'ftp://h/fhir'}", "servers.a.base_url", "not an http"),
        ("{base_url: 'http://h', max_entries: 0}", "servers.a.max_entries", "1 or more"),
        ("{base_url: 'http://h', concurrency: true}", "servers.a.concurrency", "1 or more"),
        ("{base_url: 'http://h', timeouts: {read: -1}}", "servers.a.timeouts.read", "above 0"),
        (
            "{base_url: 'http://h', backoff_base_s: 10, backoff_cap_s: 5}",
            "servers.a.backoff_cap_s",
            "less than backoff_base_s",
        ),
        ("{base_url: 'http://h', transactions: maybe}", "servers.a.transactions", "true, false"),
        ("{base_url: 'http://h', auth: {type: basic}}", "servers.a.auth.type", "none, bearer"),
        ("{base_url: 'http://h', auth: {type: bearer}}", "servers.a.auth", "token or token_file"),
        (
            "{base_url: 'http://h', auth: {type: bearer, token: 'a b'}}",
            "servers.a.auth.token",
            "without spaces",
        ),
        (
            "{base_url: 'http://h', auth: {type: smart, client_id: c}}",
            "servers.a.auth.private_key_file",
            "lacks the key",
        ),
        ("{base_url: 'mllp://h', max_entries: 5}", "servers.a.max_entries", "FHIR pushes"),
        ("{base_url: 'mllp://h', transactions: true}", "servers.a.transactions", "FHIR pushes"),
        (
            "{base_url: 'mllp://h', auth: {type: bearer, token: t}}",
            "servers.a.auth",
            "no authentication",
        ),
        ("{base_url: 'mllp://h/path'}", "servers.a.base_url", "mllp://host:port"),
        ("{base_url: 'mllp://h:99999'}", "servers.a.base_url", "mllp://host:port"),
        ("{base_url: 'mllp://:2575'}", "servers.a.base_url", "mllp://host:port"),
        (
            "{base_url: 'mllp://h', hl7v2: {sending_facility: 'A|B'}}",
            "servers.a.hl7v2.sending_facility",
            "without \\|",
        ),
        (
            "{base_url: 'mllp://h', hl7v2: {authorities: {MRN: ''}}}",
            "servers.a.hl7v2.authorities.MRN",
            "non-empty",
        ),
        ("{base_url: 'http://h', hl7v2: {}}", "servers.a.hl7v2", "for an mllp:// server"),
        ("{base_url: 'mllp://h', tls: {}}", "servers.a.tls", "for an mllps:// server"),
        ("{base_url: 'http://h', tls: {}}", "servers.a.tls", "for an mllp:// server"),
        ("{base_url: 'mllps://h', tls: {ca_file: absent.pem}}", "servers.a.tls.ca_file", "absent"),
        (
            "{base_url: 'mllps://h', tls: {ca_file: servers.yaml}}",
            "servers.a.tls.ca_file",
            "cannot be used",
        ),
        ("{base_url: 'mllps://h', tls: {cert_file: c.pem}}", "servers.a.tls", "together"),
        (
            "{base_url: 'mllps://h', tls: {cert_file: absent.pem, key_file: absent.key}}",
            "servers.a.tls.cert_file",
            "cannot be used",
        ),
    ],
)
def test_a_bad_value_is_named(tmp_path: Path, settings: str, field: str, message: str) -> None:
    path = config_file(tmp_path, f"servers:\n  a: {settings}\n")
    with pytest.raises(OptionsError, match=message) as caught:
        load_servers(path)
    assert (caught.value.source, caught.value.field) == (str(path), field)


def smart_server(tmp_path: Path, **auth: object) -> Path:
    settings = {"type": "smart", "client_id": "c", "private_key_file": "key.pem", **auth}
    inline = ", ".join(f"{k}: {v}" for k, v in settings.items())
    return config_file(tmp_path, f"servers:\n  a: {{base_url: 'http://h', auth: {{{inline}}}}}\n")


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    path = smart_server(tmp_path)
    with pytest.raises(OptionsError, match="cannot read the private key") as caught:
        load_servers(path)
    assert caught.value.field == "servers.a.auth.private_key_file"
    assert str(tmp_path / "key.pem") in caught.value.message
    env = {"FHIR_GENOMICS_SMART_KEY_FILE": str(tmp_path / "gone.pem")}
    with pytest.raises(OptionsError, match=r"gone\.pem") as from_env:
        load_server(path, env=env)
    assert (from_env.value.source, from_env.value.field) == (
        "the environment",
        "FHIR_GENOMICS_SMART_KEY_FILE",
    )


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("alg", "key", "message"),
    [
        ("RS384", lambda: pem(ec.generate_private_key(ec.SECP384R1())), "RS384 needs an RSA key"),
        ("ES384", lambda: pem(ec.generate_private_key(ec.SECP256R1())), "ES384 needs P-384"),
        ("RS384", lambda: pem(rsa.generate_private_key(65537, 1024)), "1024 bits"),  # noqa: S505
        ("ES384", lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "not an unencrypted PEM"),
    ],
)
def test_a_key_unfit_for_its_algorithm_is_refused(
    tmp_path: Path, alg: str, key: Callable[[], bytes], message: str
) -> None:
    (tmp_path / "key.pem").write_bytes(key())
    with pytest.raises(OptionsError, match=message):
        load_servers(smart_server(tmp_path, alg=alg))


def test_an_assertion_may_live_five_minutes_at_most(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(generate_key("ES384")[0])
    ok = load_servers(smart_server(tmp_path, alg="ES384", token_lifetime_s=300))["a"].auth
    assert isinstance(ok, SmartBackendAuth) and ok.token_lifetime_s == 300
    with pytest.raises(OptionsError, match="longer than the 300 s") as caught:
        load_servers(smart_server(tmp_path, alg="ES384", token_lifetime_s=301))
    assert caught.value.field == "servers.a.auth.token_lifetime_s"


def test_a_bad_value_from_the_environment_names_its_variable(folder: Path) -> None:
    env = {"FHIR_GENOMICS_SMART_ALG": "HS256"}
    with pytest.raises(OptionsError, match="'HS256' is not one of: RS384, ES384") as caught:
        load_server(folder / "servers.yaml", "hospital", env)
    assert caught.value.field == "FHIR_GENOMICS_SMART_ALG"


def test_a_file_that_is_not_yaml_or_absent(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="not YAML"):
        load_servers(config_file(tmp_path, "servers: [a\n"))
    with pytest.raises(OptionsError, match="cannot read the server configuration"):
        load_servers(tmp_path / "absent.yaml")


def test_the_readmes_servers_example_loads(folder: Path) -> None:
    """The README's 'Connect to your FHIR server' file, as written, with its key in place."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Connect to your FHIR server") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    example = section[start : section.index("```", start)]
    path = folder / "servers.yaml"
    path.write_text(example)
    hospital = load_server(path, "hospital", env={})
    assert hospital.base_url == "https://fhir.hospital.example/fhir"
    assert isinstance(hospital.auth, SmartBackendAuth) and hospital.auth.alg == "ES384"
    assert (hospital.max_entries, hospital.concurrency, hospital.transactions) == (500, 4, None)
    ehr = load_server(path, "ehr-v2", env={})
    assert ehr.mllp_address() == ("ehr.hospital.example", 2575)
    assert ehr.hl7v2 is not None
    assert ehr.hl7v2.authorities == {"HOSPMRN": "urn:oid:1.2.3.4.5.1"}


def test_an_mllp_server_takes_hl7v2_settings_and_the_default_port(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "servers:\n"
        "  ehr:\n"
        "    base_url: mllp://ehr.test\n"
        "    hl7v2: {receiving_application: 'EPIC^1.2.3^ISO', authorities: {MRN: 'urn:oid:1.2'}}\n"
        "  plain: {base_url: 'mllp://10.0.0.5:6661', timeouts: {read: 30}}\n",
    )
    servers = load_servers(path)
    ehr, plain = servers["ehr"], servers["plain"]
    assert ehr.mllp_address() == ("ehr.test", 2575)
    assert ehr.hl7v2 == Hl7v2Settings(
        receiving_application="EPIC^1.2.3^ISO", authorities={"MRN": "urn:oid:1.2"}
    )
    assert (plain.mllp_address(), plain.hl7v2, plain.timeouts.read) == (
        ("10.0.0.5", 6661),
        Hl7v2Settings(),
        30.0,
    )
    assert isinstance(plain.auth, NoAuth)


def test_an_unknown_hl7v2_key_is_named(tmp_path: Path) -> None:
    path = config_file(tmp_path, "servers:\n  a: {base_url: 'mllp://h', hl7v2: {sender: X}}\n")
    with pytest.raises(OptionsError, match="unknown key 'sender'") as caught:
        load_servers(path)
    assert caught.value.field == "servers.a.hl7v2.sender"


def test_a_token_from_the_environment_cannot_authenticate_mllp(tmp_path: Path) -> None:
    path = config_file(tmp_path, "servers:\n  a: {base_url: 'mllp://h'}\n")
    with pytest.raises(OptionsError, match="no authentication") as caught:
        load_server(path, "a", env={"FHIR_GENOMICS_SERVER_TOKEN": "t"})
    assert caught.value.field == "FHIR_GENOMICS_SERVER_TOKEN"
