"""The credentials file (secrets_file:, ~/.config/tao/.env): what it may look like, who may own it, and
that the environment wins over it. The CLI paths are in tests/e2e/test_doctor_host.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taoplan.common import secrets
from taoplan.errors import ConfigError, PlatformError
from taoplan.spec.config import load_services
from taoplan.spec.references import load_references
from tests.conftest import write

REFS = load_references()


@pytest.fixture(autouse=True)
def no_active_file() -> Iterator[None]:
    yield
    secrets._active.clear()
    secrets._active_display.clear()


def env_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_dotenv_lines_export_quotes_and_comments(tmp_path: Path) -> None:
    path = env_file(
        tmp_path,
        "# TAO\n\nexport HF_TOKEN=\"hf x\"\nWANDB_API_KEY='a#b'\nNGC_API_KEY = plain # note\nEMPTY=\n",
    )
    assert secrets.parse(path) == {
        "HF_TOKEN": "hf x",
        "WANDB_API_KEY": "a#b",
        "NGC_API_KEY": "plain",
        "EMPTY": "",
    }
    assert secrets.names_in(path) == {"HF_TOKEN", "WANDB_API_KEY", "NGC_API_KEY"}


def test_a_bad_line_is_named_by_number_never_shown(tmp_path: Path) -> None:
    path = env_file(tmp_path, "HF_TOKEN=ok\nhf-canary-3f9e0a\n")
    with pytest.raises(ConfigError) as caught:
        secrets.parse(path)
    assert (
        caught.value.message == f"{path}:2: expected NAME=value (the line is not shown: it may be a secret)"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = env_file(tmp_path, "HF_TOKEN=x\n", mode)
    assert secrets.problem(path) == f"{path} is mode {mode:04o}: it must be 0600 (chmod 600 {path})"
    with pytest.raises(ConfigError) as caught:
        secrets.use_file(path, "services.yaml:2:1: secrets_file")
    assert caught.value.message.startswith("services.yaml:2:1: secrets_file: ")
    assert secrets._active == {}  # nothing was read from it


def test_missing_or_not_a_file_is_refused(tmp_path: Path) -> None:
    assert secrets.problem(tmp_path / "nope") == f"{tmp_path / 'nope'} does not exist"
    assert secrets.problem(tmp_path) == f"{tmp_path} is not a regular file"
    assert secrets.problem(env_file(tmp_path, "A=1\n", 0o400)) is None


def test_the_environment_wins_and_require_names_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("TAO_API_KEY", raising=False)
    with pytest.raises(PlatformError, match="^secret HF_TOKEN is not set in the environment$"):
        secrets.require("HF_TOKEN")
    path = env_file(tmp_path, "HF_TOKEN=from-file\nWANDB_API_KEY=also-file\n")
    secrets.use_file(path, "here")
    assert secrets.require("HF_TOKEN") == "from-file"
    assert secrets.require("WANDB_API_KEY") == "from-env"
    with pytest.raises(PlatformError) as caught:
        secrets.require("TAO_API_KEY")
    assert caught.value.message == f"secret TAO_API_KEY is not set in the environment or {path}"


def test_resolve_expands_home_and_is_relative_to_the_services_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    assert secrets.resolve("~/.config/tao/.env", Path("/p")) == Path("/home/u/.config/tao/.env")
    assert secrets.resolve("creds.env", Path("/p")) == Path("/p/creds.env")


def test_the_services_file_takes_secrets_file_and_locates_its_errors(tmp_path: Path) -> None:
    body = "services:\n  a:\n    network_arch: cosmos-rl\n    model_path: /m\n"
    good = write(tmp_path, "version: 1\nsecrets_file: ~/.config/tao/.env\n" + body)
    assert load_services(good, REFS).secrets_file == "~/.config/tao/.env"
    for value, message in (("3", "Input should be a valid string"), ('""', "at least 1 character")):
        bad = write(tmp_path, f"version: 1\nsecrets_file: {value}\n" + body)
        with pytest.raises(ConfigError) as caught:
            load_services(bad, REFS)
        assert (
            caught.value.message.startswith(f"{bad}:2:1: secrets_file: ") and message in caught.value.message
        )
