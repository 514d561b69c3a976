"""The services file: what loads, and the located one-line error every mistake gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from taoplan.config import load_services
from taoplan.errors import ConfigError
from taoplan.references import load_references
from tests.conftest import write

REFS = load_references()

GOOD = """
version: 1
project: demo
defaults:
  num_gpus: 2
  env: {TAO_LOG_LEVEL: INFO}
platforms:
  local-docker:
    gpus: none
services:
  reason:
    network_arch: cosmos-rl
    model_path: hf_model://nvidia/Cosmos-Reason2-8B
    secrets: [HF_TOKEN]
    env: {EXTRA: "1"}
  predict:
    network_arch: cosmos-predict2.5
    model_path: hf_model://nvidia/Cosmos-Predict2.5-2B
    model_key: base-2b
    num_gpus: 1
"""


def errors_of(folder: Path, text: str) -> list[str]:
    path = write(folder, text)
    with pytest.raises(ConfigError) as info:
        load_services(path, REFS)
    return info.value.lines


def test_defaults_merge_under_each_service(tmp_path: Path) -> None:
    config = load_services(write(tmp_path, GOOD), REFS)
    assert config.project == "demo"
    assert config.services["reason"].num_gpus == 2
    assert config.services["predict"].num_gpus == 1
    assert config.services["reason"].env == {"TAO_LOG_LEVEL": "INFO", "EXTRA": "1"}
    assert config.services["reason"].secrets == ["HF_TOKEN"]


def test_project_defaults_to_folder_name(tmp_path: Path) -> None:
    folder = tmp_path / "My Project"
    folder.mkdir()
    config = load_services(write(folder, GOOD.replace("project: demo\n", "")), REFS)
    assert config.project == "my-project"


def test_error_names_file_line_column_and_field(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, GOOD.replace("    num_gpus: 1", "    num_gpus: 0"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'services.yaml'}:19:5: services.predict.num_gpus:")
    assert "greater than or equal to 1" in lines[0]


def test_value_from_defaults_is_located_in_defaults(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, GOOD.replace("  num_gpus: 2", "  num_gpus: -1"))
    assert any(":4:3: services.reason.num_gpus:" in line for line in lines)


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    text = GOOD.replace("network_arch: cosmos-rl", "network_arch: llama").replace(
        "    num_gpus: 1", "    num_gpus: zero"
    )
    lines = errors_of(tmp_path, text)
    assert len(lines) == 2
    assert "unknown arch 'llama'" in lines[0]
    assert "services.predict.num_gpus" in lines[1]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    lines = errors_of(tmp_path, GOOD.replace("    model_key: base-2b", "    model_kye: base-2b"))
    assert any("unknown key 'model_kye' (did you mean 'model_key'?)" in line for line in lines)
