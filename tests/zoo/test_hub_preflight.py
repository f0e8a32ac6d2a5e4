"""Hub push and load without the network or without a token: one line that says what to do, before any work.

A fake Hub (a local HTTP server) answers the preflight's calls where a test needs an answer (token refused,
read-only token, unknown repository); a closed port stands for a Hub that cannot be reached.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sb3_sacae.zoo import hub_check
from tests.zoo.installed import run_installed

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "PendulumPixels-v1"
PUSH = ["push_to_hub", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-orga", "tester"]
LOAD = ["load_from_hub", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-orga", "tester"]


def _unreachable() -> str:
    return f"http://127.0.0.1:{_closed_port()}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


class FakeHub(http.server.BaseHTTPRequestHandler):
    """``/api/whoami-v2`` and ``/api/models/<repo>`` as the Hub answers them; ``mode`` picks the answer."""

    mode = "refused"

    def do_GET(self) -> None:
        if self.path.startswith("/api/whoami-v2"):
            if self.mode == "refused":
                self._answer(401, {"error": "Invalid credentials in Authorization header"})
            else:
                self._answer(200, {"name": "tester", "auth": {"accessToken": {"role": self.mode}}})
        else:
            self._answer(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hub_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """No stored token (a fresh HF_HOME), no offline mode, unless the test sets them."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("HF_") and key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(HF_HOME=str(tmp_path / "hf-home"), OMP_NUM_THREADS="1", **env)
    return environ


def launcher(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**hub_env(cwd, **env), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sb3_sacae.zoo", *args]
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The command failed with one line that contains ``expected`` and no traceback."""
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("sb3-sacae: ")]
    assert len(lines) == 1, result.stderr[-4000:]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------- the checks
def test_push_check_names_the_fix_when_offline(monkeypatch):
    monkeypatch.setattr(hub_check, "is_offline", lambda: True)
    with pytest.raises(hub_check.HubUnavailableError, match=r"HF_HUB_OFFLINE=1.*--no-upload --local-dir DIR"):
        hub_check.check_push("tester/sacae-X")


def test_push_check_names_the_fix_without_a_token(monkeypatch, tmp_path):
    monkeypatch.setattr(hub_check, "is_offline", lambda: False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(hub_check.HubUnavailableError, match=r"No Hugging Face token.*hf auth login.*HF_TOKEN"):
        hub_check.check_push("tester/sacae-X")


@pytest.mark.parametrize(
    ("mode", "expected"), [("refused", r"rejected the Hugging Face token \(401"), ("read", "read-only"), ("write", None)]
)
def test_push_check_asks_the_hub_about_the_token(monkeypatch, fake_hub, mode, expected):
    import huggingface_hub.constants

    monkeypatch.setattr(hub_check, "is_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake_hub)
    monkeypatch.setattr(FakeHub, "mode", mode)
    if expected is None:
        assert hub_check.check_push("tester/sacae-X", token="hf_fake") == "tester"
    else:
        with pytest.raises(hub_check.HubUnavailableError, match=expected):
            hub_check.check_push("tester/sacae-X", token="hf_fake")


def test_download_check_names_an_unknown_repository(monkeypatch, fake_hub):
    import huggingface_hub.constants

    monkeypatch.setattr(hub_check, "is_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake_hub)
    with pytest.raises(hub_check.HubUnavailableError, match=r"No model repository tester/sacae-X on http://127\.0\.0\.1"):
        hub_check.check_download("tester/sacae-X")


def test_an_outage_of_the_hub_is_explained():
    class Response:
        status_code = 503

    class HubHTTPError(Exception):
        response = Response()

    assert "answered 503" in hub_check.explain(HubHTTPError("Service Unavailable"), "tester/sacae-X")


def test_errors_that_are_not_about_the_hub_are_not_explained():
    assert hub_check.explain(ValueError("bad shape")) is None
    assert hub_check.explain(KeyError("policy")) is None


# ---------------------------------------------------------------------------------------------------- sb3-sacae's scripts
def test_push_without_a_token_stops_before_the_evaluation(tmp_path):
    """No trained model even exists here: the preflight answers before anything is loaded or evaluated."""
    result = launcher(*PUSH, "--local-dir", "staged", cwd=tmp_path)
    one_line(result, "No Hugging Face token", "hf auth login", "--no-upload --local-dir DIR")
    assert not (tmp_path / "staged").exists()


def test_push_offline_stops_before_the_evaluation(tmp_path):
    one_line(launcher(*PUSH, cwd=tmp_path, HF_HUB_OFFLINE="1", HF_TOKEN="hf_fake"), "HF_HUB_OFFLINE=1", "--no-upload")


def test_push_to_an_unreachable_hub_says_so(tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    one_line(launcher(*PUSH, cwd=tmp_path, HF_TOKEN="hf_fake", HF_ENDPOINT=endpoint), f"Cannot reach {endpoint}", "proxy")


def test_push_with_a_refused_token_says_so(tmp_path, fake_hub, monkeypatch):
    monkeypatch.setattr(FakeHub, "mode", "refused")
    one_line(launcher(*PUSH, cwd=tmp_path, HF_TOKEN="hf_fake", HF_ENDPOINT=fake_hub), "401", "hf auth login")


def test_load_from_an_unreachable_hub_says_so(tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    one_line(launcher(*LOAD, cwd=tmp_path, HF_ENDPOINT=endpoint), f"Cannot reach {endpoint}", "HF_HUB_OFFLINE=1")
    assert not (tmp_path / "logs").exists()


def test_load_offline_of_a_model_not_in_the_cache_says_so(tmp_path):
    result = launcher(*LOAD, cwd=tmp_path, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty-cache"))
    one_line(result, "not in the local Hub cache", "HF_HUB_OFFLINE=1")


def test_load_of_an_unknown_repository_says_so(tmp_path, fake_hub):
    one_line(launcher(*LOAD, cwd=tmp_path, HF_ENDPOINT=fake_hub), "No model repository tester/sacae-PendulumPixels-v1")


def test_launcher_runs_the_preflight_for_rl_zoo3s_scripts_too(tmp_path):
    one_line(launcher("zoo_push_to_hub", *PUSH[1:], cwd=tmp_path), "No Hugging Face token")


# ---------------------------------------------------------------------------------------------------- rl_zoo3's scripts
@pytest.mark.slow
def test_installed_rl_zoo3_push_and_load_answer_in_one_line(tmp_path):
    """The installed wheel's start-up hook: ``python -m rl_zoo3.push_to_hub --algo sacae`` checks before loading."""
    env = hub_env(tmp_path)
    push = ["rl_zoo3.push_to_hub", *PUSH[1:]]
    one_line(run_installed(*push, cwd=tmp_path, env=env), "No Hugging Face token", "--no-upload")
    one_line(run_installed(*push, cwd=tmp_path, env=env, HF_HUB_OFFLINE="1", HF_TOKEN="hf_fake"), "HF_HUB_OFFLINE=1")
    own = run_installed("sb3_sacae.zoo", *PUSH, cwd=tmp_path, env=env, HF_TOKEN="hf_fake", HF_ENDPOINT=_unreachable())
    one_line(own, "Cannot reach http://127.0.0.1:", "--no-upload --local-dir DIR")
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    load = run_installed("rl_zoo3.load_from_hub", *LOAD[1:], cwd=tmp_path, env=env, HF_ENDPOINT=endpoint)
    one_line(load, f"Cannot reach {endpoint}")
    assert not (tmp_path / "logs").exists()
    # other algorithms keep rl_zoo3's own behaviour: no preflight, rl_zoo3's own error
    other = ["rl_zoo3.load_from_hub", LOAD[1], "sac", *LOAD[3:]]
    result = run_installed(*other, cwd=tmp_path, env=env, HF_ENDPOINT=endpoint)
    assert result.returncode != 0 and "sb3-sacae: " not in result.stderr
