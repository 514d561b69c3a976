"""The ``gateway:`` section of the services file: where `taoplan gateway` listens, how callers are
authenticated, where the request log lives and how long it keeps rows."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from taoplan.spec.config_units import parse_duration_text, parse_size_text

SECRET_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")


def listen_host_port(listen: str) -> tuple[str, int]:
    """'127.0.0.1:4000' / '[::1]:4000' / 'localhost:4000' -> (host, port); ValueError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{listen!r}: expected HOST:PORT such as 127.0.0.1:4000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GatewaySettings(BaseModel):
    """``gateway:`` (every key optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    listen: str = "127.0.0.1:4000"
    auth: Literal["keys", "none"] = "keys"
    database: str = "sqlite"
    password_secret: str | None = None
    sampling: Literal["explicit", "server-defaults"] = "explicit"
    max_body: str = "64MiB"
    upstream_timeout: Annotated[float, Field(gt=0, le=24 * 3600)] = 300
    log_content: StrictBool = False
    retention: str = "30d"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        listen_host_port(value)
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if value == "sqlite" or value.startswith("sqlite:///"):
            return value
        if value.startswith(("postgresql://", "postgres://")):
            if re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", value):
                raise ValueError(
                    "no password in the DSN: name an environment variable in password_secret instead"
                )
            return value
        raise ValueError(f"{value!r}: expected sqlite, sqlite:///PATH or postgresql://user@host/db")

    @field_validator("password_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not SECRET_NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r}: give the NAME of an environment variable ([A-Z_][A-Z0-9_]*)")
        return value

    @field_validator("max_body")
    @classmethod
    def _max_body(cls, value: str) -> str:
        parse_size_text(value)
        return value

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        if parse_duration_text(value) <= 0:
            raise ValueError(f"{value!r}: retention must be longer than 0")
        return value

    @model_validator(mode="after")
    def _open_door(self) -> GatewaySettings:
        host, _ = listen_host_port(self.listen)
        if self.auth == "none" and not is_loopback(host):
            raise ValueError(
                f"listen {self.listen} is not a loopback address: auth: none is for loopback only "
                "(use auth: keys)"
            )
        return self

    @property
    def max_body_bytes(self) -> int:
        return parse_size_text(self.max_body)

    @property
    def retention_seconds(self) -> float:
        return parse_duration_text(self.retention)

    @property
    def host(self) -> str:
        return listen_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return listen_host_port(self.listen)[1]
