"""Property-based fuzzing: whatever the file holds, the loader either succeeds or raises ConfigError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taoplan.errors import ConfigError
from taoplan.spec.config import load_services
from taoplan.spec.references import load_references

REFS = load_references()
FIELDS = [
    "network_arch",
    "model_path",
    "model_key",
    "output_dir",
    "num_gpus",
    "platform",
    "image",
    "host_port",
    "env",
    "secrets",
    "readiness",
    "protect",
    "bogus",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "cosmos-rl",
            "cosmos-predict2.5",
            "hf_model://a/b",
            "/abs",
            "s3://x",
            "local-docker",
            "slurm",
            "HF_TOKEN",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
service = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
document = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "project": scalars,
        "defaults": st.one_of(service, values),
        "platforms": st.one_of(
            st.dictionaries(st.sampled_from(["local-docker", "slurm", "x"]), values, max_size=3), values
        ),
        "services": st.one_of(
            st.dictionaries(st.text(max_size=12), st.one_of(service, values), max_size=4), values
        ),
        "pricing": values,
    },
)


def load(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "services.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            load_services(path, REFS)
        except ConfigError as exc:
            # one non-empty line per problem, each naming where it is
            assert exc.lines and all(
                line and "\n" not in line and "services.yaml" in line for line in exc.lines
            ), exc.lines


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_structured_documents_never_crash(doc: dict[str, Any]) -> None:
    load(json.dumps(doc, default=str, allow_nan=True))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    load(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    load(data)


YAML_PIECES = [
    "version: 1\n",
    "services:\n",
    "  a:\n",
    "    network_arch: cosmos-rl\n",
    "    model_path: /m\n",
    "  - x\n",
    "\t",
    "&a ",
    "*a",
    "!!binary ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "? ",
    "---\n",
    "...\n",
    "<<: *a\n",
    "'",
    '"',
    "#",
    "%YAML 1.2\n",
    "!custom ",
    "0x1F",
    "1e9",
    ".inf",
    "~",
    "|\n  x\n",
    ">\n  y\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=25))
def test_yaml_shaped_garbage_never_crashes(pieces: list[str]) -> None:
    load("".join(pieces))
