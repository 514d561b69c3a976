"""The smoke request's body (spec/smoke.py) for every arch, and how a failed answer is told (engine/smoke.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taoplan.engine.smoke import server_message
from taoplan.errors import ConfigError
from taoplan.spec.config import Smoke, load_services
from taoplan.spec.references import load_references
from taoplan.spec.smoke import PROMPT, smoke_body

REFS = load_references()


def test_the_smallest_valid_body_per_arch() -> None:
    hf = smoke_body("tao-dataservices", REFS.request, True).body
    assert hf == {
        "model": "tao-dataservices",
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        "max_tokens": 1,
        "temperature": 0.7,
        "top_p": 0.8,
    }
    predict = smoke_body("cosmos-predict2.5", REFS.request, True).body
    assert predict is not None and predict["max_tokens"] == 1 and predict["num_steps"] == 1
    skipped = smoke_body("cosmos-rl", REFS.request, True)
    assert skipped.body is None and "set readiness.smoke.image" in skipped.note
    rl = smoke_body("cosmos-rl", REFS.request, Smoke(image="https://example.com/cat.jpg")).body
    assert rl is not None
    assert rl["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/cat.jpg"},
    }
    assert smoke_body("tao-dataservices", REFS.request, False) == smoke_body("cosmos-rl", REFS.request, False)


def test_the_servers_own_words_when_it_fails() -> None:
    tao = '{"error": {"message": "CUDA error: out of memory", "type": "internal_error"}}'
    assert server_message(500, tao) == "HTTP 500: internal_error: CUDA error: out of memory"
    assert server_message(400, '{"detail": "bad body"}') == "HTTP 400: bad body"
    assert server_message(502, "<html>\n Bad   gateway</html>") == "HTTP 502: <html> Bad gateway</html>"


def test_readiness_smoke_in_the_services_file(tmp_path: Path) -> None:
    def load(smoke: str) -> object:
        path = tmp_path / "services.yaml"
        path.write_text(
            "version: 1\nservices:\n  a:\n    network_arch: cosmos-rl\n    model_path: /m\n"
            f"    readiness: {{smoke: {smoke}}}\n"
        )
        return load_services(path, REFS).services["a"].readiness.smoke

    assert load("false") is False
    assert load("{image: 'https://example.com/a.png'}") == Smoke(image="https://example.com/a.png")
    with pytest.raises(ConfigError) as err:
        load("{imag: x}")
    assert "services.a.readiness.smoke" in err.value.message
