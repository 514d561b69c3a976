"""Hostile and broken input: each file in broken/ fails with exit 1, one located line per problem,
no traceback, and nothing written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from taoplan.cli.app import main

CORPUS = sorted((Path(__file__).parent / "broken").glob("*.yaml"))


def expectations(path: Path) -> tuple[str, int]:
    head = path.read_text().splitlines()
    expect = head[0].removeprefix("# expect: ")
    line = int(head[1].removeprefix("# line: "))
    return expect, line


def run(args: list[str], cwd: Path) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=cwd):
        result = runner.invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output


def assert_clean_failure(code: int, output: str) -> list[str]:
    assert code == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and all(line.startswith("Error: ") for line in lines), output
    return lines


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_broken_file_gets_located_one_line_error(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAO_INF_MS_STATE", str(tmp_path / "registry.json"))
    expect, line = expectations(path)
    target = tmp_path / "services.yaml"
    target.write_bytes(path.read_bytes())
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        code, output = run([*command, "-f", str(target)], tmp_path)
        lines = assert_clean_failure(code, output)
        assert any(expect in msg for msg in lines), output
        located = [m for m in lines if expect in m][0]
        assert re.match(rf"Error: {re.escape(str(target))}:{line}:\d+: ", located), located
    assert not (tmp_path / ".taoplan").exists(), "a broken file must not create state"
    assert not (tmp_path / "registry.json").exists()


def test_missing_file(tmp_path: Path) -> None:
    code, output = run(["validate", "-f", str(tmp_path / "nope.yaml")], tmp_path)
    assert assert_clean_failure(code, output) == [f"Error: {tmp_path / 'nope.yaml'}: no such file"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    code, output = run(["validate", "-f", str(tmp_path / "dir.yaml")], tmp_path)
    assert "is a directory" in assert_clean_failure(code, output)[0]


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text("")
    code, output = run(["validate", "-f", str(tmp_path / "services.yaml")], tmp_path)
    assert "services.yaml:1:1: the file is empty" in assert_clean_failure(code, output)[0]


def test_huge_file(tmp_path: Path) -> None:
    big = tmp_path / "services.yaml"
    with big.open("w") as fh:
        fh.write("version: 1\n# " + "x" * (17 * 1024 * 1024) + "\n")
    code, output = run(["validate", "-f", str(big)], tmp_path)
    assert "the limit is 16 MiB" in assert_clean_failure(code, output)[0]


def test_non_utf8_file(tmp_path: Path) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_bytes(b"version: 1\nservices:\n  r\xe9ason: {}\n")
    code, output = run(["validate", "-f", str(bad)], tmp_path)
    assert "services.yaml:3:4: not valid UTF-8" in assert_clean_failure(code, output)[0]


def test_broken_references_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    original = Path(__file__).resolve().parents[2] / "references"
    for name in ("request.yaml", "versions.yaml"):
        (refs / name).write_text((original / name).read_text())
    (refs / "service.yaml").write_text(
        (original / "service.yaml").read_text().replace("container_port: 8080", "container_port: eighty")
    )
    monkeypatch.setenv("TAOPLAN_REFERENCES", str(refs))
    good = tmp_path / "services.yaml"
    good.write_text("version: 1\nservices:\n  a:\n    network_arch: cosmos-rl\n    model_path: /m\n")
    code, output = run(["validate", "-f", str(good)], tmp_path)
    line = assert_clean_failure(code, output)[0]
    assert re.match(rf"Error: {re.escape(str(refs / 'service.yaml'))}:\d+:\d+: container_port: ", line), line
