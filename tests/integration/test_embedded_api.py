"""The embedded API the command line starts before anything else."""

import sys

import httpx

from personasim.embedded_api import EmbeddedAPI, start_unless_configured


def test_it_answers_on_the_port_it_promised_and_stops_with_its_run(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    api = EmbeddedAPI()
    try:
        api.wait_ready(120)
        assert httpx.get(f"{api.url}/health", timeout=5).status_code == 200
    finally:
        api.stop()
    assert api.process.returncode is not None  # ended and reaped


def test_a_configured_server_or_a_loaded_prefect_is_left_alone(monkeypatch):
    import prefect  # noqa: F401 - loaded: its settings are fixed, it manages its own server

    assert "prefect" in sys.modules and start_unless_configured() is None
    monkeypatch.delitem(sys.modules, "prefect")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert start_unless_configured() is None


def test_a_server_that_cannot_start_is_one_line_saying_why(monkeypatch):
    import pytest

    from personasim.errors import PersonasimError

    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "nonsense://nowhere")
    api = EmbeddedAPI()
    try:
        with pytest.raises(PersonasimError, match=r"exited with code \d+ while starting: .*nonsense") as failed:
            api.wait_ready(120)
    finally:
        api.stop()
    assert "\n" not in str(failed.value) and "Traceback" not in str(failed.value)
