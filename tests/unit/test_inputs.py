"""Bad persona/query input is rejected up front with file, row and field named."""

import json

import pandas as pd
import pytest

from personasim.errors import InputError
from personasim.inputs import load_pairs

GOOD = {"persona_id": "p1", "persona_features": {"role": "chef"}, "original_query": "how to bake bread",
        "query_id": "q1"}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_pair_rows_and_persona_rows(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [
        GOOD,
        {"persona_id": "p2", "persona_features": {"tone": "dry"},
         "queries": ["plain string query", {"original_query": "q two", "adapted_query": "yo q two",
                                            "target_turns": 4}]},
    ])
    pairs = load_pairs(path)
    assert [(p.persona_id, p.original_query) for p in pairs] == [
        ("p1", "how to bake bread"), ("p2", "plain string query"), ("p2", "q two")]
    assert pairs[2].adapted_query == "yo q two" and pairs[2].target_turns == 4
    # without a query_id the key is a hash of the text: stable across loads, distinct per query
    assert [p.query_key for p in load_pairs(path)] == [p.query_key for p in pairs]
    assert pairs[1].query_key.startswith("q") and pairs[1].query_key != pairs[2].query_key


@pytest.mark.parametrize("row, needle", [
    ({k: v for k, v in GOOD.items() if k != "persona_features"}, "row 2: field persona_features: missing"),
    ({**GOOD, "persona_features": {}}, "row 2: field persona_features"),
    ({**GOOD, "original_query": "   "}, "row 2: field original_query: Value error, original_query is empty"),
    ({**GOOD, "original_query": 42}, "row 2: field original_query"),
    ({**GOOD, "persona_features": {"age": 40}}, "row 2: field persona_features.age"),
    ({**GOOD, "target_turns": 9}, "row 2: field target_turns"),
    ({**GOOD, "colour": "red"}, "row 2: field colour: unknown field"),
    ({**GOOD, "persona_id": "../etc"}, "row 2: field persona_id"),
    ({**GOOD, "persona_id": "a\nb"}, "row 2: field persona_id"),
    ({**GOOD, "query_id": "x\x00"}, "row 2: field query_id"),
    ({**GOOD, "original_query": "x" * 1_000_000}, "row 2: field original_query: Value error, original_query has"),
    ({"persona_id": "p3", "persona_features": {"a": "b"}, "queries": [{"original_query": ""}]},
     "row 2 queries"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, row, needle):
    path = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "query_id": "q0"}, row])
    with pytest.raises(InputError) as err:
        load_pairs(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_malformed_line_duplicates_and_empty_file(tmp_path):
    with pytest.raises(InputError, match=r"in\.jsonl: row 2: not valid JSON"):
        load_pairs(write_jsonl(tmp_path / "in.jsonl", [GOOD, "{broken"]))
    with pytest.raises(InputError, match=r"row 2: field query_id: duplicate pair.*already at .*row 1"):
        load_pairs(write_jsonl(tmp_path / "dup.jsonl", [GOOD, GOOD]))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="input file not found"):
        load_pairs(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="unsupported input format"):
        load_pairs(tmp_path / "in.txt")


def test_csv_with_feature_columns_and_missing_column(tmp_path):
    good = tmp_path / "in.csv"
    good.write_text("persona_id,feature.role,feature.tone,original_query,target_turns\n"
                    "p1,chef,warm,how to bake,3\n")
    [pair] = load_pairs(good)
    assert pair.persona_features == {"role": "chef", "tone": "warm"} and pair.target_turns == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("persona_id,feature.role\np1,chef\n")
    with pytest.raises(InputError, match=r"bad\.csv: row 1: field original_query: missing"):
        load_pairs(bad)


def test_parquet_rows_and_wrong_types(tmp_path):
    good = tmp_path / "in.parquet"
    pd.DataFrame([GOOD]).to_parquet(good)
    assert load_pairs(good)[0].persona_features == {"role": "chef"}
    bad = tmp_path / "bad.parquet"
    pd.DataFrame([{**GOOD, "original_query": 5}]).to_parquet(bad)
    with pytest.raises(InputError, match=r"bad\.parquet: row 1: field original_query"):
        load_pairs(bad)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        load_pairs(tmp_path / "junk.parquet")
