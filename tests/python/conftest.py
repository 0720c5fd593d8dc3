"""Session fixtures: one `switchyard mock` and one `switchyard serve` in front of it.

The binary comes from $SWITCHYARD_BIN, else ~/.cache/switchyard/target/debug/switchyard
(build it with `CARGO_TARGET_DIR=$HOME/.cache/switchyard/target cargo build -p switchyard`).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import anthropic
import openai
import pytest

MASTER_KEY = "sk-master-test-key"
LIMITED_KEY = "sk-limited-key-1"
MAX_BODY_BYTES = 200_000
STARTUP_TIMEOUT_S = 20.0
DEFAULT_BIN = Path.home() / ".cache" / "switchyard" / "target" / "debug" / "switchyard"


def switchyard_bin() -> Path:
    path = Path(os.environ.get("SWITCHYARD_BIN") or DEFAULT_BIN)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"switchyard binary not found or not executable at {path}; build it with "
            "`CARGO_TARGET_DIR=$HOME/.cache/switchyard/target cargo build -p switchyard` "
            "or set SWITCHYARD_BIN",
            pytrace=False,
        )
    return path


class Proc:
    """A switchyard subprocess whose first stdout line announces its address."""

    def __init__(self, name: str, args: list[str], log_dir: Path, prefix: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.stderr.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("SWITCHYARD_LOG", "info")
        self.popen = subprocess.Popen(
            [str(switchyard_bin()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.url = self._read_address(prefix)

    def _read_address(self, prefix: str) -> str:
        lines: queue.Queue[bytes] = queue.Queue()
        assert self.popen.stdout is not None
        stdout = self.popen.stdout

        def pump() -> None:
            # Keep draining stdout for the life of the process so it can never block on a full pipe.
            for line in iter(stdout.readline, b""):
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, name=f"{self.name}-stdout", daemon=True).start()
        try:
            first: str | None = lines.get(timeout=STARTUP_TIMEOUT_S).decode("utf-8", "replace").strip()
        except queue.Empty:
            first = None
        if first is None:
            self.stop()
            pytest.fail(
                f"{self.name} printed no address within {STARTUP_TIMEOUT_S:.0f}s\n"
                f"stderr:\n{self.stderr_text()}",
                pytrace=False,
            )
        if not first.startswith(prefix):
            code = self.popen.poll()
            self.stop()
            pytest.fail(
                f"{self.name} did not announce its address (exit code {code}); first stdout line: {first!r}\n"
                f"stderr:\n{self.stderr_text()}",
                pytrace=False,
            )
        url = first[len(prefix) :].strip().rstrip("/")
        assert url.startswith("http://127.0.0.1:"), f"{self.name} announced an unexpected address: {first!r}"
        return url

    def stderr_text(self, limit: int = 8000) -> str:
        try:
            if not self._log.closed:
                self._log.flush()
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._log.close()


def gateway_config(mock_url: str, db_path: Path) -> str:
    return f"""\
server:
  master_key: {MASTER_KEY}
  max_body_bytes: {MAX_BODY_BYTES}
storage: "sqlite://{db_path}"
logging: {{ capture: full }}
providers:
  up: {{ type: openai-compatible, base_url: "{mock_url}/v1" }}
  # The mock speaks Anthropic's Messages API too.
  claude: {{ type: anthropic, api_key: sk-ant-mock-key, base_url: "{mock_url}/v1" }}
  # And Gemini's generateContent.
  gem: {{ type: gemini, api_key: gm-mock-key, base_url: "{mock_url}/v1beta" }}
  # And Bedrock's Converse, signed with SigV4 (the mock checks the signature is there).
  bed: {{ type: bedrock, region: us-east-1, aws_access_key_id: AKIDMOCK, aws_secret_access_key: mock-secret, base_url: "{mock_url}" }}
models:
  - name: chat
    targets: [{{ provider: up, model: mock-large, price: {{ input_per_mtok: 2, output_per_mtok: 8 }} }}]
  - name: embed
    targets: [{{ provider: up, model: mock-embed }}]
  - name: claude-chat
    targets: [{{ provider: claude, model: mock-claude, price: {{ input_per_mtok: 3, output_per_mtok: 15 }} }}]
  - name: gemini-chat
    targets: [{{ provider: gem, model: mock-gemini, price: {{ input_per_mtok: 0.3, output_per_mtok: 2.5 }} }}]
  - name: gemini-embed
    targets: [{{ provider: gem, model: mock-gemini-embed }}]
  - name: bedrock-chat
    targets: [{{ provider: bed, model: "anthropic.mock-claude-v1:0", price: {{ input_per_mtok: 3, output_per_mtok: 15 }} }}]
  # Fault tests get models of their own: a 429 holds its target back for the retry-after and
  # repeated 5xx open its breaker, which must not leak into other tests.
  - name: fault-429
    targets: [{{ provider: up, model: mock-large }}]
  - name: fault-5xx
    targets: [{{ provider: up, model: mock-large }}]
    breaker: {{ failures: 100 }}
keys:
  - {{ name: limited, key: {LIMITED_KEY}, models: [embed] }}
"""


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("switchyard")


@pytest.fixture(scope="session")
def mock_proc(run_dir: Path) -> Iterator[Proc]:
    proc = Proc("mock", ["mock", "--listen", "127.0.0.1:0"], run_dir, "switchyard mock listening on ")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def gateway_proc(run_dir: Path, mock_proc: Proc) -> Iterator[Proc]:
    config = run_dir / "switchyard.yaml"
    config.write_text(gateway_config(mock_proc.url, run_dir / "log.db"))
    proc = Proc(
        "gateway",
        ["serve", "--config", str(config), "--listen", "127.0.0.1:0"],
        run_dir,
        "switchyard listening on ",
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def mock_url(mock_proc: Proc) -> str:
    return mock_proc.url


@pytest.fixture(scope="session")
def gateway_url(gateway_proc: Proc) -> str:
    return gateway_proc.url


def _client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=15.0)


@pytest.fixture(scope="session")
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    """The gateway, with the master key."""
    c = _client(f"{gateway_url}/v1", MASTER_KEY)
    yield c
    c.close()


@pytest.fixture(scope="session")
def limited_client(gateway_url: str) -> Iterator[openai.OpenAI]:
    """The gateway, with a key that may use only the `embed` model."""
    c = _client(f"{gateway_url}/v1", LIMITED_KEY)
    yield c
    c.close()


@pytest.fixture(scope="session")
def mock_client(mock_url: str) -> Iterator[openai.OpenAI]:
    """The mock itself, bypassing the gateway: the reference answers."""
    c = _client(f"{mock_url}/v1", "sk-mock-needs-no-key")
    yield c
    c.close()


@pytest.fixture(scope="session")
def mock_stats(mock_url: str) -> Callable[[], dict[str, Any]]:
    """Reads the mock's GET /mock/stats."""

    def read() -> dict[str, Any]:
        with urllib.request.urlopen(f"{mock_url}/mock/stats", timeout=10) as resp:
            assert resp.status == 200
            return json.loads(resp.read())

    return read



@pytest.fixture(scope="session")
def claude(gateway_url: str) -> Iterator[anthropic.Anthropic]:
    """The gateway through the official Anthropic SDK, with the master key."""
    c = anthropic.Anthropic(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0, timeout=15.0)
    yield c
    c.close()
