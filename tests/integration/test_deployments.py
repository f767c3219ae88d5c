"""prefect.yaml and the example config stay valid as the code changes."""

import json
from pathlib import Path

import yaml

from personasim.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_entrypoints_parameters_and_schedules(monkeypatch):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert names == {"on-demand", "from-personas", "nightly-refresh", "scale-out-kubernetes", "scale-out-docker"}
    pools = {"personasim-process", "personasim-kubernetes", "personasim-docker"}
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        flow.validate_parameters(deployment["parameters"])
        inputs = deployment["parameters"]["input_path"] or deployment["parameters"]["queries"]
        assert Path(inputs).exists()
        assert deployment["work_pool"]["name"] in pools
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}  # one writer
        if deployment["work_pool"]["name"] != "personasim-process":  # the code is in the image, where it was copied
            assert deployment["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == (
                _workdir_of_image())
            assert deployment["parameters"]["task_runner"] == "dask"
            assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(deployment)
        for schedule in deployment.get("schedules", []):
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert any(d.get("schedules") for d in spec["deployments"])


def _workdir_of_image() -> str:
    return next(line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
                if line.startswith("WORKDIR"))


def test_example_config_is_valid():
    cfg = load_config(ROOT / "configs" / "openai.example.yaml")
    assert [m.model for m in cfg.spec.models.assistant] == ["gpt-4o-mini", "gpt-4o"]
    assert cfg.spec.models.user_simulator.temperature == 0.8 and cfg.pricing["gpt-4o"].output_per_1m == 10.0
