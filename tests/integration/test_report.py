"""`personasim report`: one self-contained HTML file, checked in a real headless Chromium."""

import json
import re
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest

from personasim.cli import main
from personasim.dataset import Dataset
from personasim.report.conversations import word_diff
from personasim.report.page import _embed, render_report

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample_personas.jsonl"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "output" / "screenshots"


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, prefect_harness):
    """The sample personas through the flow on the offline backend (semantic noise, repairs, fallbacks)."""
    from personasim.flows.generate import generate_interactions

    root = tmp_path_factory.mktemp("report") / "ds"
    summary = generate_interactions(input_path=str(SAMPLE), dataset_root=str(root), show_progress=False)
    assert summary["done"] == 55 and Path(summary["report"]) == root / "report.html"
    return root


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the report test needs the system Chromium (Debian package chromium; README's test command)"
    return path


def test_word_diff_rebuilds_both_texts():
    clean, noisy = "How do I export my data to CSV?", "how do i export ur data 2 csv?? thx"
    runs = word_diff(clean, noisy)
    assert "".join(t for op, t in runs if op != "+") == clean
    assert "".join(t for op, t in runs if op != "-") == noisy
    assert {op for op, _ in runs} == {"=", "-", "+"}


def test_model_text_cannot_close_the_script_element():
    text = _embed({"t": "</script><script>alert(1)</script> & <b>"})
    assert "<" not in text and ">" not in text and json.loads(text) == {"t": "</script><script>alert(1)</script> & <b>"}


def test_report_loads_in_chromium_and_its_filters_work(dataset_root, capsys):
    from playwright.sync_api import sync_playwright

    out = dataset_root.parent / "report.html"
    assert main(["report", str(dataset_root), "--to", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    summary = out.read_text().split('id="plots"')[0]
    assert "{&#x27;" not in summary and "{'" not in summary  # every mapping is a small table, never a repr
    assert summary.count('<table class="mini">') >= 3  # noise layers, termination reasons, turns histogram
    dataset = Dataset(dataset_root)
    ix = dataset.table("interactions", ["interaction_id", "persona_id", "noise_layers", "violations"]).to_pylist()
    with_layer = sum(1 for r in ix if "surface_noise" in (r["noise_layers"] or []))
    flagged = sum(1 for r in ix if r["violations"])
    persona = ix[0]["persona_id"]
    of_persona = sum(1 for r in ix if r["persona_id"] == persona)
    assert 0 < with_layer < len(ix) and 0 < flagged < len(ix)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        assert errors == [] and requests == [out.as_uri()]  # nothing fetched: self-contained
        count = page.locator("#count")
        assert count.text_content() == f"{len(ix)} matching of {len(ix)}"
        assert page.locator("article.conversation").count() == 25  # one page
        assert page.locator("figure.chart svg").count() >= 4  # turns, terminations, layers, tokens

        page.select_option("#f-layer", "surface_noise")
        assert count.text_content() == f"{with_layer} matching of {len(ix)}"
        assert page.locator("article.conversation ins").count() > 0  # noised turns show their difference
        assert page.locator("article.conversation del").count() > 0
        page.select_option("#f-layer", "")
        page.check("#flag-violation")
        assert count.text_content() == f"{flagged} matching of {len(ix)}"
        assert page.locator("article.conversation .violations").count() == min(flagged, 25)
        page.uncheck("#flag-violation")
        page.select_option("#f-persona", persona)
        assert count.text_content() == f"{of_persona} matching of {len(ix)}"
        assert {page.locator("article.conversation h3").nth(i).text_content().split(" · ")[0]
                for i in range(of_persona)} == {persona}
        page.select_option("#f-persona", "")
        page.click("#next")
        assert page.locator("#page").text_content() == f"page 2 of {-(-len(ix) // 25)}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
        assert errors == []
        browser.close()
    assert (SCREENSHOTS / "report.png").stat().st_size > 10_000


def test_a_large_dataset_is_sampled_the_same_way_on_every_build(dataset_root):
    dataset = Dataset(dataset_root)
    first, second = render_report(dataset, max_conversations=10), render_report(dataset, max_conversations=10)

    def ids(html):
        data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
        return [c["id"] for c in json.loads(data)["conversations"]]

    assert ids(first) == ids(second) == sorted(dataset.interaction_ids())[:10]
    assert "10 of 55 conversations" in first
    stats = json.loads((dataset_root / "stats.json").read_text())
    assert f"<td>interactions</td><td>{stats['interactions']}</td>" in first  # the summary counts every one
    layers = pc.sum(dataset.table("interactions", ["noised_turns"]).column(0)).as_py()
    assert sum(stats["quality"]["layer_mix"]["counts"].values()) == layers


def test_report_of_a_folder_that_is_not_a_dataset_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().out.strip()
    assert err == f"error: {tmp_path}: no stats.json (not a personasim dataset, or no run finished)"
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path), "--max-conversations", "0"])
    assert exit_.value.code == 2 and "--max-conversations: must be greater than 0" in capsys.readouterr().err
