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
            "personasim/report/report.css"} <= set(names)
