"""The services file: what loads, and the located one-line error every mistake gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from taoplan.errors import ConfigError
from taoplan.spec.config import load_services
from taoplan.spec.references import load_references
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


# ------------------------------------------------------------------------------------- YAML semantics

SERVICE = "services:\n  a: {network_arch: cosmos-rl, model_path: /m}\n"


def test_yaml_12_scalars_anchors_and_explicit_tags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\n"
        "defaults: {env: &e {A: yes, B: 0x10, C: !!str 12, E: '0o7'}}\n"
        "pricing: {a: {gpu_hour: 1e1}}\n"
        "services:\n"
        "  a: {network_arch: cosmos-rl, model_path: /m, env: {X: on}}\n"
        "  b: {network_arch: cosmos-rl, model_path: !!str /n, num_gpus: !!int '2', env: *e}\n",
    )
    config = load_services(path, REFS)
    # YAML 1.2 core schema: yes/on stay strings, 0x10 is an int (16), 1e1 a float
    assert config.source.data["defaults"]["env"] == {"A": "yes", "B": 16, "C": "12", "E": "0o7"}
    assert config.services["a"].env == {"A": "yes", "B": "16", "C": "12", "E": "0o7", "X": "on"}
    assert config.services["b"].env == {"A": "yes", "B": "16", "C": "12", "E": "0o7"}
    assert config.services["b"].num_gpus == 2
    assert config.pricing["a"].gpu_hour == 10.0


def test_aliases_share_the_anchored_value_and_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["version: 1", "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    errors = errors_of(tmp_path, "\n".join(lines) + "\n" + SERVICE)
    assert len(errors) == 1 and "expands to more than 2000000 nodes (alias bomb?)" in errors[0]
    assert errors[0].startswith(f"{tmp_path / 'services.yaml'}:8:")  # the alias that crossed the line


def test_deep_nesting_is_a_located_error_not_a_crash(tmp_path: Path) -> None:
    nested = "[" * 50000 + "]" * 50000
    errors = errors_of(
        tmp_path, f"version: 1\nservices:\n  a:\n    network_arch: cosmos-rl\n    env: {nested}\n"
    )
    assert errors[-1].endswith(":5:5: services.a.env: Input should be a valid dictionary"), errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\n---\nversion: 1\n", ":2:1: YAML syntax error: but found another document"),
        ("version: *nope\n", ":1:10: YAML syntax error: found undefined alias"),
        ("version: 1\n? [a, b]\n: x\n", ":2:3: mapping keys must be plain scalars"),
        ("version: !!set {1}\n", ":1:10: unsupported YAML node with tag tag:yaml.org,2002:set"),
        ("version: 1\n1: a\n0x1: b\n", ":3:1: duplicate key 1"),
    ],
)
def test_yaml_the_loader_refuses(tmp_path: Path, text: str, expected: str) -> None:
    errors = errors_of(tmp_path, text + SERVICE)
    assert len(errors) == 1 and errors[0] == f"{tmp_path / 'services.yaml'}{expected}", errors
