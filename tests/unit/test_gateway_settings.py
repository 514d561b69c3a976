"""The gateway: section of the services file: defaults, parsed values, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from taoplan.errors import ConfigError
from taoplan.spec.config import load_services
from taoplan.spec.gateway_settings import GatewaySettings
from taoplan.spec.references import load_references
from taoplan.spec.schema import services_schema
from tests.conftest import write

REFS = load_references()
SERVICES = """
version: 1
services:
  reason: {network_arch: cosmos-rl, model_path: /models/r}
"""


def errors_of(folder: Path, gateway: str) -> list[str]:
    path = write(folder, SERVICES + gateway)
    with pytest.raises(ConfigError) as info:
        load_services(path, REFS)
    return info.value.lines


def test_defaults_without_a_gateway_section(tmp_path: Path) -> None:
    config = load_services(write(tmp_path, SERVICES), REFS)
    assert config.gateway == GatewaySettings()
    g = config.gateway
    assert (g.listen, g.auth, g.database, g.sampling, g.log_content) == (
        "127.0.0.1:4000",
        "keys",
        "sqlite",
        "explicit",
        False,
    )
    assert g.max_body_bytes == 64 * 2**20 and g.retention_seconds == 30 * 86400
    assert g.upstream_timeout == 300 and (g.host, g.port) == ("127.0.0.1", 4000)


def test_a_full_section_and_per_token_prices(tmp_path: Path) -> None:
    text = """
gateway:
  listen: "[::1]:4100"
  auth: none
  database: postgresql://taoplan@127.0.0.1:5432/taoplan_test
  password_secret: GATEWAY_DB_PASSWORD
  sampling: server-defaults
  max_body: 512KiB
  upstream_timeout: 600
  log_content: true
  retention: 1h30m
pricing:
  local-docker: {gpu_hour: 2.5, prompt_token: 0.000001, completion_token: 0.000002}
"""
    config = load_services(write(tmp_path, SERVICES + text), REFS)
    g = config.gateway
    assert (g.host, g.port, g.auth, g.sampling, g.log_content) == (
        "::1",
        4100,
        "none",
        "server-defaults",
        True,
    )
    assert g.max_body_bytes == 512 * 1024 and g.retention_seconds == 5400
    assert g.password_secret == "GATEWAY_DB_PASSWORD"
    price = config.pricing["local-docker"]
    assert (price.gpu_hour, price.prompt_token, price.completion_token) == (2.5, 0.000001, 0.000002)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "gateway:\n  listen: 0.0.0.0:4000\n  auth: none\n",
            ":5:3: gateway.listen: listen 0.0.0.0:4000 is not a loopback address: auth: none is for "
            "loopback only (use auth: keys)",
        ),
        ("gateway:\n  max_body: 64 potatoes\n", ":5:3: gateway.max_body: '64 potatoes': expected a size"),
        ("gateway:\n  max_body: 0MiB\n", ":5:3: gateway.max_body: '0MiB': a size must be at least 1 byte"),
        ("gateway:\n  retention: forever\n", ":5:3: gateway.retention: 'forever': expected a duration"),
        ("gateway:\n  retention: 0d\n", ":5:3: gateway.retention: '0d': retention must be longer than 0"),
        ("gateway:\n  listne: 127.0.0.1:4000\n", ":5:3: gateway.listne: unknown key 'listne' (did you mean 'listen'?)"),
        ("gateway:\n  listen: 4000\n", ":5:3: gateway.listen: "),
        ("gateway:\n  listen: localhost:99999\n", ":5:3: gateway.listen: 'localhost:99999': expected HOST:PORT"),
        ("gateway:\n  auth: basic\n", ":5:3: gateway.auth: Input should be 'keys' or 'none'"),
        ("gateway:\n  database: mysql://x/y\n", ":5:3: gateway.database: 'mysql://x/y': expected sqlite"),
        ("gateway:\n  password_secret: my-password\n", ":5:3: gateway.password_secret: 'my-password': give the NAME"),
        ("gateway:\n  upstream_timeout: 0\n", ":5:3: gateway.upstream_timeout: Input should be greater than 0"),
        ("gateway:\n  log_content: maybe\n", ":5:3: gateway.log_content: Input should be a valid boolean"),
        ("gateway: [1, 2]\n", ":4:1: gateway: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_bad_values_are_located(tmp_path: Path, section: str, expected: str) -> None:
    lines = errors_of(tmp_path, section)
    assert len(lines) == 1 and expected in lines[0], lines
    assert lines[0].startswith(str(tmp_path / "services.yaml") + ":") or lines[0].startswith("services.yaml:")


def test_a_password_in_the_dsn_is_refused(tmp_path: Path) -> None:
    [line] = errors_of(tmp_path, "gateway:\n  database: postgresql://u:hunter22@db/x\n")
    assert "gateway.database: no password in the DSN" in line and "hunter22" not in line


def test_schema_describes_the_gateway_section() -> None:
    schema = services_schema()
    gateway = schema["properties"]["gateway"]
    assert gateway["additionalProperties"] is False
    assert set(gateway["properties"]) == set(GatewaySettings.model_fields)
    assert gateway["properties"]["auth"]["enum"] == ["keys", "none"]
    assert "prompt_token" in schema["properties"]["pricing"]["additionalProperties"]["properties"]
