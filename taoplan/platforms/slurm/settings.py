"""The Slurm settings as the cluster sees them: ${VAR} expanded when used, names checked, paths quoted.

SlurmConfig (spec/platform_settings.py) validates what the services file says. The values that
reach the login node's shell (login, partition, account, remote_dir, mounts, ssh options) are read
here, each time they are used, with their environment fallbacks (SLURM_PARTITION, SLURM_ACCOUNT,
SSH_KEY_PATH), so a bad value is a one-line error naming its field, and nothing reaches ssh unquoted.
"""

from __future__ import annotations

import os
import re

from taoplan.errors import ConfigError
from taoplan.platforms.common.ssh import Target, quote
from taoplan.spec.config import expand_env
from taoplan.spec.platform_settings import SlurmConfig


def remote_path(path: str) -> str:
    """A path for the remote shell: a leading ~ expands there, the rest is quoted."""
    if path == "~" or path == "~/":
        return "~"
    if path.startswith("~/"):
        return "~/" + quote(path[2:])
    return quote(path)


class Settings:
    """One platform's SlurmConfig, read for use on the cluster."""

    def __init__(self, config: SlurmConfig) -> None:
        self.config = config

    def expand(self, text: str, field: str) -> str:
        return expand_env(text, dict(os.environ), f"platforms.slurm.{field}")

    @property
    def partition(self) -> str | None:
        value = self.config.partition or os.environ.get("SLURM_PARTITION") or None
        return self._checked_name(value, "partition")

    @property
    def account(self) -> str | None:
        value = self.config.account or os.environ.get("SLURM_ACCOUNT") or None
        return self._checked_name(value, "account")

    def _checked_name(self, value: str | None, field: str) -> str | None:
        if value is None:
            return None
        value = self.expand(value, field)
        if not re.fullmatch(r"[A-Za-z0-9_.,-]+", value):
            raise ConfigError(f"platforms.slurm.{field}: {value!r} is not a valid Slurm name")
        return value

    @property
    def remote_dir(self) -> str:
        """remote_dir as a shell word for the login node."""
        return remote_path(self.expand(self.config.remote_dir, "remote_dir"))

    @property
    def mounts(self) -> list[str]:
        return [self.expand(m, "container_mounts") for m in self.config.container_mounts]

    def target(self) -> Target:
        login = self.expand(self.config.login, "login")
        user, _, hosts = login.partition("@")
        login = f"{user}@{hosts.split(',')[0]}"  # SLURM_HOSTNAME may list failover hosts: use the first
        if not re.fullmatch(r"[^\s@'\"\\-][^\s@'\"\\]*@[^\s@'\"\\,]+", login):
            raise ConfigError(f"platforms.slurm.login: {login!r} is not user@host")
        identity = self.config.identity_file or os.environ.get("SSH_KEY_PATH") or None
        if identity:
            identity = os.path.expanduser(self.expand(identity, "identity_file"))
        options = {k: self.expand(v, f"ssh_options.{k}") for k, v in self.config.ssh_options.items()}
        return Target(login=login, port=self.config.ssh_port, identity_file=identity, options=options)
