"""prefect.yaml and the example config stay valid as the code changes."""

from pathlib import Path

import yaml

from personasim.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_yaml_entrypoints_parameters_and_schedules(monkeypatch):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert names == {"on-demand", "nightly-refresh"}
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        flow.validate_parameters(deployment["parameters"])
        assert Path(deployment["parameters"]["input_path"]).exists()
        assert deployment["work_pool"]["name"] == "personasim-process"
        for schedule in deployment.get("schedules", []):
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert any(d.get("schedules") for d in spec["deployments"])


def test_example_config_is_valid():
    cfg = load_config(ROOT / "configs" / "openai.example.yaml")
    assert [m.model for m in cfg.llm.assistant.model_pool] == ["gpt-4o-mini", "gpt-4o"]
    assert cfg.llm.user_simulator.temperature == 0.8 and cfg.pricing["gpt-4o"].output_per_1m == 10.0
