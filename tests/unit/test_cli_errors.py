"""Errors a user meets before anything changes: one line, exit 1, nothing written."""

from __future__ import annotations

import http.server
import socketserver
import threading
from pathlib import Path

import pytest

from tests.conftest import taoplan, write

FILE = """
version: 1
services:
  one: {network_arch: cosmos-rl, model_path: /m}
"""


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:1", "unix:///nonexistent/docker.sock"])
def test_unreachable_docker_is_one_clear_line(project: Path, host: str) -> None:
    write(project, FILE)
    for command in (["plan"], ["apply", "--auto-approve"], ["status"]):
        run = taoplan(*command, cwd=project, env={"DOCKER_HOST": host})
        assert run.code == 1, run.text
        assert run.err.count("\n") == 1 and "Traceback" not in run.err
        assert run.err.startswith(f"Error: local-docker: cannot reach the Docker daemon at {host}: ")
    assert not (project / ".taoplan" / "state.json").exists()


class _NotDocker(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"404 page not found\n")

    def log_message(self, *args: object) -> None:
        pass


def test_a_socket_that_is_not_docker_is_one_clear_line(project: Path, tmp_path: Path) -> None:
    """DOCKER_HOST pointing at some other HTTP server's socket (a common mix-up)."""
    path = tmp_path / "other.sock"
    server = socketserver.ThreadingUnixStreamServer(str(path), _NotDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write(project, FILE)
        run = taoplan("plan", cwd=project, env={"DOCKER_HOST": f"unix://{path}"})
    finally:
        server.shutdown()
        server.server_close()
    assert run.code == 1 and "Traceback" not in run.err, run.text
    assert run.err == (
        f"Error: local-docker: the Docker daemon at unix://{path} did not list containers: "
        "404 Not Found: 404 page not found\n"
    )
    assert not (project / ".taoplan" / "state.json").exists()
