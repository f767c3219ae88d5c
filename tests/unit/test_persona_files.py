"""PersonaGym's persona and query files read as they are: as a run's personas and as input pairs."""

import json

import pytest

from personasim.errors import InputError
from personasim.inputs import load_input
from personasim.personas import persona_id_for
from personasim.personas.files import read_personas, write_personas

PERSONAGYM_PERSONA = {"persona_id": "persona_20260128_024638_8398742eab2b",
                      "features": {"seniority": "staff", "age_band": 1824, "domain": "marketing"},
                      "system_prompt": "You are helping a staff-level marketer; keep it brief.",
                      "metadata": {"num_features": 3, "has_prompt": True, "created_at": "2026-01-28T02:46:54"}}


def test_a_folder_of_personagym_persona_files_with_its_index_is_read(tmp_path):
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / f"{PERSONAGYM_PERSONA['persona_id']}.json").write_text(json.dumps(PERSONAGYM_PERSONA))
    second = {**PERSONAGYM_PERSONA, "persona_id": "persona_2", "system_prompt": None, "features": {"domain": "law"}}
    (folder / "persona_2.json").write_text(json.dumps(second))
    (folder / "index.json").write_text(json.dumps({"personas": [{"persona_id": "x", "filepath": "x.json",
                                                                 "num_features": 3}], "count": 1}))
    personas = read_personas(folder)
    assert [p.persona_id for p in personas] == ["persona_2", PERSONAGYM_PERSONA["persona_id"]]  # sorted files
    assert personas[1].features["age_band"] == "1824" and personas[1].prompt_source == "input"
    assert personas[0].system_prompt is None and personas[0].prompt_source is None
    assert personas[1].metadata["has_prompt"] is True


def test_a_written_persona_file_reads_back_and_ids_default_to_the_features_hash(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"persona_features": {"role": "chef"}}) + "\n")
    [persona] = read_personas(path)
    assert persona.persona_id == persona_id_for({"role": "chef"})
    write_personas([persona], tmp_path / "again.jsonl")
    assert read_personas(tmp_path / "again.jsonl")[0] == persona


def test_a_duplicate_persona_id_names_both_rows(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"persona_id": "a", "persona_features": {"x": str(i)}}) + "\n" for i in (1, 2)))
    with pytest.raises(InputError, match=r"p.jsonl: row 2: field persona_id: 'a' is already at .*p.jsonl: row 1"):
        read_personas(path)


def test_personagym_personas_with_their_query_objects_are_input_pairs(tmp_path):
    queries = [{"query_id": "ultrachat:190555", "original_query": "Write a Greek pasta salad recipe",
                "adapted_query": "greek pasta salad recipe, quick", "was_style_transferred": True,
                "inferred_domain": "food", "inferred_scenario": "planning", "target_length": "short",
                "target_turns": 3, "prompt_type": "partial", "source_dataset": "query.jsonl",
                "metadata": {"dataset": "HuggingFaceH4/ultrachat_200k"}}]
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({**PERSONAGYM_PERSONA, "queries": queries}) + "\n")
    [pair] = load_input(path)
    assert pair.persona_features["age_band"] == "1824" and pair.adapted_query == "greek pasta salad recipe, quick"
    assert pair.metadata["inferred_domain"] == "food" and pair.metadata["was_style_transferred"] is True
    assert pair.metadata["persona"]["num_features"] == 3 and pair.target_turns == 3
    assert pair.system_prompt == PERSONAGYM_PERSONA["system_prompt"]
