"""The Prefect sequence of docs/prefect.md on a real `prefect server start` (SQLite) with a process worker:
deploy on a fresh server, run, refuse bad parameters, fail truthfully, queue (the second run a rerun
that skips everything), cancel, resume.

Everything goes through the `prefect` command and the server's REST API, as a user's tools would.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from personasim.flows.outcome import dataset_key
from personasim.llm import operations as op
from personasim.testing import FakeOpenAIServer, Fault, server_config

from conftest import write_pairs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
KEY = "sk-worker-env-only"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Prefect server and a process worker, started for this module, and a REST client."""

    def __init__(self, home: Path, llm: FakeOpenAIServer) -> None:
        port = _free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": self.api,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false",
                    "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                    "PREFECT_LOGGING_LEVEL": "WARNING", "PERSONASIM_TEST_KEY": KEY}
        self.env.pop("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", None)
        self.processes = [self._start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                      home / "server.log")]
        self.http = httpx.Client(base_url=self.api, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.http.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise AssertionError((home / "server.log").read_text()[-2000:])
        self.llm = llm
        self.home = home

    def _start(self, cmd: list[str], log: Path) -> subprocess.Popen:
        return subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def prefect(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PREFECT, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=180)

    def start_worker(self) -> None:
        self.processes.append(self._start([PREFECT, "worker", "start", "--pool", "personasim-process"],
                                          self.home / "worker.log"))

    def deployment(self, name: str) -> dict:
        found = self.post("/deployments/filter", {"deployments": {"name": {"any_": [name]}}}).json()
        assert len(found) == 1, found
        return found[0]

    def post(self, path: str, payload: dict) -> httpx.Response:
        """A POST, retried on 503 ("database is locked" on SQLite: retryable) as Prefect's client does."""
        for attempt in range(6):
            response = self.http.post(path, json=payload)
            if response.status_code != 503:
                return response
            time.sleep(0.2 * (attempt + 1))
        return response

    def create_run(self, deployment: str, **parameters) -> httpx.Response:
        return self.post(f"/deployments/{self.deployment(deployment)['id']}/create_flow_run",
                         {"parameters": parameters})

    def run(self, deployment: str, **parameters) -> str:
        response = self.create_run(deployment, **parameters)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def flow_run(self, run_id: str) -> dict:
        response = self.http.get(f"/flow_runs/{run_id}")
        while response.status_code == 503:
            time.sleep(0.2)
            response = self.http.get(f"/flow_runs/{run_id}")
        return response.json()

    def wait(self, run_id: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state"]["type"] in FINAL:
                return run
            time.sleep(0.5)
        raise AssertionError(f"flow run {run_id} still {run['state']}; worker log:\n"
                             + (self.home / "worker.log").read_text()[-3000:])

    def artifacts(self, run_id: str) -> dict[str, dict]:
        found = self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
        return {a["key"]: a for a in found if a["key"]}

    def close(self) -> None:
        self.http.close()
        for process in reversed(self.processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sequence of docs/prefect.md on a fresh server: the process pool, `prefect deploy` by name, a worker."""
    home = tmp_path_factory.mktemp("prefect-home")
    with FakeOpenAIServer(latency=0.05) as llm:
        server = Server(home, llm)
        try:
            assert (done := server.prefect("work-pool", "create", "personasim-process", "--type", "process")
                    ).returncode == 0, done.stdout + done.stderr
            done = server.prefect("--no-prompt", "deploy", "--name", "on-demand", "--name", "nightly-refresh")
            assert done.returncode == 0, done.stdout + done.stderr
            server.start_worker()
            yield server
        finally:
            server.close()
            shutil.rmtree(ROOT / ".prefect", ignore_errors=True)


def _remote_config(path: Path, llm: FakeOpenAIServer) -> str:
    path.write_text(yaml.safe_dump({"seed": 7, **server_config(llm.base_url, max_retries=0, pair_attempts=1),
                                    "distractor": {"enabled": False}}))
    return str(path)


def test_deployments_run_and_show_their_artifacts(server, tmp_path):
    schema = server.deployment("on-demand")["parameter_openapi_schema"]["properties"]
    concurrency = schema["max_concurrency"]
    assert concurrency["minimum"] == 1 and "LLM calls in flight" in concurrency["description"]
    assert all(p.get("description") for p in schema.values())  # the UI form explains every field
    refresh = server.deployment("nightly-refresh")
    assert {"backend", "seed", "limit"} <= set(refresh["parameter_openapi_schema"]["properties"])
    for deployment in (refresh, server.deployment("on-demand")):  # one run at a time, the next waits
        assert deployment["global_concurrency_limit"]["limit"] == 1
        assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"

    pairs, root = write_pairs(tmp_path / "pairs.jsonl", 6), tmp_path / "ds"
    first = server.wait(server.run("on-demand", input_path=str(pairs), dataset_root=str(root)))
    assert first["state"]["type"] == "COMPLETED", first["state"]
    assert first["state"]["message"].startswith("6 done, 0 failed, 0 skipped")
    key = dataset_key(str(root))
    artifacts = server.artifacts(first["id"])  # on the deployment's own flow run
    assert {f"{key}-summary", f"{key}-report", f"{key}-report-link", f"{key}-progress"} <= set(artifacts)
    assert artifacts[f"{key}-progress"]["data"] == 100.0
    assert (root / "report.html").as_uri() in artifacts[f"{key}-report-link"]["data"]



def test_bad_parameters_are_refused_when_the_run_is_created(server, tmp_path):
    response = server.create_run("on-demand", input_path="x.jsonl", max_concurrency=0)
    assert response.status_code in (409, 422) and "max_concurrency" in response.text


def test_a_run_in_which_every_pair_failed_ends_failed_with_its_counts(server, tmp_path):
    server.llm.respond_with(op.RESPOND, lambda body: Fault("status", 400))
    try:
        pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
        run = server.wait(server.run("on-demand", input_path=str(pairs), dataset_root=str(tmp_path / "ds"),
                                     config_path=_remote_config(tmp_path / "c.yaml", server.llm)))
    finally:
        server.llm.respond_with(op.RESPOND, lambda body: "fine")
    assert run["state"]["type"] == "FAILED"
    assert run["state"]["message"].startswith("no pair succeeded: 0 done, 3 failed")
    assert any(r.authorization == f"Bearer {KEY}" for r in server.llm.requests)  # the key from the worker's env


def test_runs_on_one_dataset_from_two_deployments_take_turns(server, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pairs(incoming / "a.jsonl", 8)
    root, config = str(tmp_path / "ds"), _remote_config(tmp_path / "c.yaml", server.llm)
    server.llm.latency = 0.2
    try:
        ids = [server.run("on-demand", input_path=str(incoming), dataset_root=root, config_path=config),
               server.run("nightly-refresh", input_path=str(incoming), dataset_root=root, config_path=config)]
        runs = [server.wait(run_id) for run_id in ids]
    finally:
        server.llm.latency = 0.05
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"], [r["state"] for r in runs]
    messages = sorted(r["state"]["message"] for r in runs)
    # one generated everything; the other waited its turn, then skipped it all: a rerun costs nothing
    assert messages[0].startswith("0 done, 0 failed, 8 skipped") and messages[1].startswith("8 done, 0 failed")


def test_a_cancelled_run_keeps_what_it_committed_and_a_rerun_resumes(server, tmp_path):
    pairs, root = write_pairs(tmp_path / "pairs.jsonl", 30), tmp_path / "ds"
    config = _remote_config(tmp_path / "c.yaml", server.llm)
    server.llm.latency = 0.3
    try:
        run_id = server.run("on-demand", input_path=str(pairs), dataset_root=str(root), config_path=config,
                            max_concurrency=4, wave_size=4)
        deadline = time.monotonic() + 120
        while not list((root / "_commits").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.3)  # a wave is committed
        server.post(f"/flow_runs/{run_id}/set_state", {"state": {"type": "CANCELLING"}, "force": True})
        cancelled = server.wait(run_id)
    finally:
        server.llm.latency = 0.05
    assert cancelled["state"]["type"] == "CANCELLED", cancelled["state"]
    rerun = server.wait(server.run("on-demand", input_path=str(pairs), dataset_root=str(root), config_path=config))
    assert rerun["state"]["type"] == "COMPLETED"
    message = rerun["state"]["message"]
    done, skipped = int(message.split(" done")[0]), int(message.split(" failed, ")[1].split(" skipped")[0])
    assert skipped > 0 and done + skipped == 30, message
    import pyarrow.dataset as ds

    ids = ds.dataset(root / "interactions", format="parquet", partitioning="hive").to_table(
        columns=["interaction_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids)) == 30  # nothing lost, nothing twice
