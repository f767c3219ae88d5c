"""Query pools (every accepted shape, duplicates dropped and counted) and the assignment of queries
to personas (no reuse, exhaustion, matching, growth, stored assignments kept)."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personasim.config.personas import QueryMatch, QuerySettings, SamplingSettings
from personasim.errors import ConfigError, InputError
from personasim.personas import PersonaSampler, assign, load_bank, load_pool
from personasim.personas.queries import text_key

ROWS = [
    {"prompt": "How do I season a steak?", "dataset": "chat/ultra", "source_id": "7", "category": "cooking"},
    {"text": "Why is my <div> not centered?", "metadata": {"category": "coding", "source": "docs"}},
    {"original_query": "Explain index funds simply", "query_id": "q-fin", "metadata": {"category": "finance"}},
    {"query_id": "pg:9", "original_query": "Plan a day in Lisbon", "adapted_query": "lisbon day plan pls",
     "was_style_transferred": True, "inferred_domain": "travel", "inferred_scenario": "planning"},
    "what is a p-value",
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_every_query_shape_reads_with_its_id_text_and_metadata(tmp_path):
    pool = load_pool(QuerySettings(pool=(write_jsonl(tmp_path / "q.jsonl", ROWS),)))
    by_text = {q.text: q for q in pool.queries}
    assert by_text["How do I season a steak?"].query_id == "chat/ultra:7"  # PersonaGym's <dataset>:<source_id>
    assert by_text["How do I season a steak?"].metadata["category"] == "cooking"
    assert by_text["Why is my <div> not centered?"].metadata == {"category": "coding", "source": "docs"}
    assert by_text["Explain index funds simply"].query_id == "q-fin"
    lisbon = by_text["Plan a day in Lisbon"]
    assert lisbon.metadata["inferred_domain"] == "travel" and "adapted_query" not in lisbon.metadata
    assert by_text["what is a p-value"].query_id.startswith("q")


def test_csv_parquet_and_json_pools_read_alike(tmp_path):
    with open(tmp_path / "q.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["query", "category"])
        writer.writeheader()
        writer.writerow({"query": "How do I fix a running toilet?", "category": "home"})
    pq.write_table(pa.table({"prompt": ["Why do cats purr?"], "category": ["science"]}), tmp_path / "q.parquet")
    (tmp_path / "q.json").write_text(json.dumps({"queries": ["How do bees navigate?"]}))
    pool = load_pool(QuerySettings(pool=(str(tmp_path / "q.csv"), str(tmp_path / "q.parquet"),
                                         str(tmp_path / "q.json"))))
    assert [q.text for q in pool.queries] == ["How do I fix a running toilet?", "Why do cats purr?",
                                              "How do bees navigate?"]


def test_exact_and_near_duplicates_are_dropped_and_counted_and_code_is_not_merged(tmp_path):
    long = ("I committed to the wrong branch an hour ago and pushed nothing yet; how can I undo the last git commit "
            "but keep every change I made in the working tree so that I can commit it on the right branch")
    rows = [long + "?", long.upper(),  # the same query
            long + " tomorrow?",  # a near duplicate
            "What does a += b do?", "What does a -= b do?", "What does a += b do?"]
    pool = load_pool(QuerySettings(pool=(write_jsonl(tmp_path / "q.jsonl", rows),), max_queries=3))
    assert [q.text for q in pool.queries] == [rows[0], rows[3], rows[4]]
    assert pool.summary() == {"rows": 6, "kept": 3, "exact_duplicates": 1, "near_duplicates": 1,
                              "over_max_queries": 1}
    assert text_key("Why is the sky blue ?") == text_key("why is the sky blue")


@pytest.mark.parametrize("rows, message", [
    ([{"prompt": "a"}, {"category": "x"}], r"q.jsonl: row 2: field original_query: missing"),
    ([{"query_id": "x", "text": "one"}, {"query_id": "x", "text": "two"}],
     r"q.jsonl: row 2: field query_id: 'x' is already at .*q.jsonl: row 1 with another text"),
    ([{"text": "a", "metadata": "oops"}], r"q.jsonl: row 1: field metadata: must be an object"),
    ([{"text": "a", "target_turns": 9}], r"q.jsonl: row 1: field target_turns: must be a whole number from 2 to 5"),
])
def test_a_bad_row_is_one_line_naming_file_row_and_field(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        load_pool(QuerySettings(pool=(write_jsonl(tmp_path / "q.jsonl", rows),)))


@pytest.fixture(scope="module")
def personas():
    return PersonaSampler(load_bank(), SamplingSettings(), seed=1).sample(12)


@pytest.fixture
def pool(tmp_path):
    categories = ["coding", "finance", "travel"]
    rows = [{"prompt": f"question number {i} about {categories[i % 3]} and topic {i * 7}", "source_id": str(i),
             "dataset": "t", "category": categories[i % 3]} for i in range(40)]
    return load_pool(QuerySettings(pool=(write_jsonl(tmp_path / "q.jsonl", rows),), near_duplicate_threshold=1.0))


def test_no_query_goes_to_two_personas_and_growth_keeps_earlier_assignments(personas, pool):
    settings = QuerySettings(queries_per_persona=3)
    full = assign(personas, pool, settings, seed=4)
    assert len(full) == 36 and len({a.query_id for a in full}) == 36 and not any(a.reused for a in full)
    assert assign(personas[:5], pool, settings, seed=4) == full[:15]
    in_order = assign(personas, pool, QuerySettings(queries_per_persona=3, selection="in_order"), seed=4)
    assert [a.query_id for a in in_order[:3]] == ["t:0", "t:1", "t:2"]


def test_a_pool_too_small_is_an_error_or_reused_and_counted(personas, pool):
    with pytest.raises(ConfigError, match=r"the pool holds 40 unused queries for 48 assignments \(12 personas x 4\)"):
        assign(personas, pool, QuerySettings(queries_per_persona=4), seed=4)
    reused = assign(personas, pool, QuerySettings(queries_per_persona=4, on_exhausted="reuse"), seed=4)
    assert sum(a.reused for a in reused) == 8 and len(reused) == 48
    for persona in personas:  # a persona never gets the same query twice
        mine = [a.query_id for a in reused if a.persona_id == persona.persona_id]
        assert len(mine) == len(set(mine)) == 4


def test_queries_match_a_persona_dimension_first(personas, pool):
    match = QueryMatch(metadata="category", dimension="domain_interest")
    out = assign(personas, pool, QuerySettings(queries_per_persona=2, match=match), seed=4)
    by_persona = {p.persona_id: p for p in personas}
    for a in out:
        wish = by_persona[a.persona_id].features.get("domain_interest")
        assert a.matched == (a.metadata["category"] == wish)
        if wish in ("coding", "finance", "travel"):
            assert a.matched


def test_stored_assignments_are_kept_and_their_queries_stay_used(personas, pool):
    settings = QuerySettings(queries_per_persona=2)
    first = assign(personas[:4], pool, settings, seed=4)
    grown = assign(personas, pool, QuerySettings(queries_per_persona=3), seed=9, stored=first)
    assert grown[:2] == first[:2] and grown[2].position == 2  # topped up to 3, the first two as they were
    assert len({a.query_id for a in grown}) == len(grown)
