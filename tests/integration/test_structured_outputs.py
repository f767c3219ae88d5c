"""JSON-answering roles ask for a JSON schema response format; an endpoint that refuses schemas gets
json_object from then on (one warning); validation stays behind both (the real `openai` client)."""

import json
import logging

import pytest

from personasim.interaction_generator import InteractionGenerator
from personasim.llm import operations as op
from personasim.testing import FakeOpenAIServer

NOISE = {"enabled": True, "type": "semantic", "activation_probability": 1.0,
         "semantic": {"layer_weights": {"surface_noise": 1.0}}}


def generate(remote_config, **endpoint):
    generator = InteractionGenerator.from_config(remote_config(distractor=NOISE,
                                                               generation={"transfer_probability": 0.0}, **endpoint))
    return generator.generate_interaction("p1", {"role": "nurse"}, "how do I plan night shifts well", target_turns=2)


def test_the_distractor_asks_for_its_schema_and_gets_an_instance(remote_config, llm_server):
    ix = generate(remote_config)
    rewrite = llm_server.requests_for(op.SEMANTIC_REWRITE)[0].body["response_format"]
    assert rewrite["type"] == "json_schema" and rewrite["json_schema"]["strict"] is True
    schema = rewrite["json_schema"]["schema"]
    assert schema["required"] == ["noisy_text", "applied_strategies"] and not schema["additionalProperties"]
    assert set(schema["properties"]["applied_strategies"]["items"]["enum"]) <= {
        "colloquial_speech", "incomplete_sentence", "typo_misspelling", "punctuation_format", "emotional_attitude",
        "synonym_rewrite", "word_segmentation", "negative_expression", "real_life_fragments"}
    intent = llm_server.requests_for(op.EXTRACT_INTENT)[0].body["response_format"]
    assert intent["json_schema"]["schema"]["required"] == ["intent", "slots", "confidence"]
    assert ix.noise[0].was_noised and not ix.noise_fallbacks
    for request in llm_server.requests_for(op.RESPOND):  # free-text roles ask for nothing
        assert "response_format" not in request.body


def test_an_endpoint_that_refuses_schemas_gets_json_object_once_warned(remote_config, monkeypatch, caplog):
    with FakeOpenAIServer(json_schema=False) as server:
        monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-0123456789abcdef")
        from personasim.testing import server_config

        config = {"seed": 7, **server_config(server.base_url), "distractor": NOISE,
                  "generation": {"transfer_probability": 0.0}}
        with caplog.at_level(logging.WARNING, logger="personasim.llm"):
            generator = InteractionGenerator.from_config(config)
            ix = generator.generate_interaction("p1", {"role": "nurse"}, "how do I sleep by day", target_turns=3)
        forms = [r.body["response_format"]["type"] for r in server.requests if "response_format" in r.body]
        refused = [r for r in server.requests if r.answered == "400"]
    assert len(refused) == 1 and forms[0] == "json_schema" and set(forms[1:]) == {"json_object"}
    assert len([r for r in caplog.records if "refused a JSON schema" in r.getMessage()]) == 1
    assert all(n.was_noised for n in ix.noise)


@pytest.mark.parametrize("mode, expected", [("json_object", {"type": "json_object"}), ("off", None)])
def test_structured_outputs_is_a_setting_per_endpoint(remote_config, llm_server, mode, expected):
    generate(remote_config, structured_outputs=mode)
    assert llm_server.requests_for(op.SEMANTIC_REWRITE)[0].body.get("response_format") == expected


def test_a_reply_that_ignores_the_schema_is_still_validated(remote_config, llm_server):
    llm_server.script(op.SEMANTIC_REWRITE, ['{"noisy_text": ""}', "not json at all"])
    ix = generate(remote_config)
    assert ix.noise_fallbacks and "malformed_json" in ix.noise_fallbacks[0]
    assert json.loads(llm_server.requests_for(op.SEMANTIC_REWRITE)[1].body["messages"][-2]["content"]) == {
        "noisy_text": ""}  # the bad reply shown back with the reason
