"""The wheel: one top-level package, prompts, report assets and the Prefect code inside it."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_nothing_named_tasks_or_flows(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("personasim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"personasim", next(n.split("/")[0] for n in names
                                                                   if ".dist-info/" in n)}
    assert {"personasim/flows/generate.py", "personasim/tasks/generation.py",
            "personasim/tasks/prefect_compat.py", "personasim/prompts/follow_up.txt",
            "personasim/report/template.html", "personasim/report/report.js",
            "personasim/report/report.css", "personasim/personas/default_bank.yaml",
            "personasim/prompts/formulate_system_prompt.txt"} <= set(names)


def test_no_module_beside_an_entrypoint_shadows_the_standard_library():
    """Prefect loads a deployment's entrypoint (flows/generate.py) with its folder first on sys.path,
    and processes spawned from the run (a local Dask cluster's workers) inherit that path: a
    flows/queue.py there was imported for the standard `queue`, and no worker could start."""
    for folder in ("flows", "tasks"):
        modules = {path.stem for path in (ROOT / folder).glob("*.py")}
        assert not modules & sys.stdlib_module_names, folder
