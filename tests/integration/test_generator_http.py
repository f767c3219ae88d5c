"""The interaction engine end to end over HTTP: turn order, pool, noise, usage, failures, storage."""

import collections
import json

from personasim.distractor import Semantics, create_distractor_model
from personasim.interaction_generator import InteractionGenerator, InteractionStorage
from personasim.llm import operations as op
from personasim.testing import Fault

from conftest import PERSONA


def test_three_turn_conversation_order_and_history(remote_config, llm_server):
    llm_server.script(op.FOLLOW_UP, ["what about tests?", "and speed?"])
    gen = InteractionGenerator(remote_config(generation={"min_turns": 2, "max_turns": 5}))
    ix = gen.generate_interaction("p1", PERSONA, "how do I profile python", target_turns=3, query_id="q1")
    assert ix is not None and ix.num_turns == 3
    assert [m.role for m in ix.messages] == ["user", "assistant"] * 3
    assert ix.get_trajectory() == ["how do I profile python", "what about tests?", "and speed?"]
    assert [m.metadata["turn"] for m in ix.messages] == [1, 1, 2, 2, 3, 3]
    assert ix.messages[0].metadata["is_initial"] and ix.messages[2].metadata["is_followup"]
    responds = llm_server.requests_for(op.RESPOND)
    assert len(responds) == 3 and len(llm_server.requests_for(op.FOLLOW_UP)) == 2
    # each assistant call carries the whole conversation so far, in order
    last = responds[-1].body["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[-1]["content"] == "and speed?" and last[2]["content"] == ix.messages[1].content
    assert ix.metadata["termination_reason"] == "target_reached" and ix.original_query == "how do I profile python"


def test_satisfied_user_stops_early_but_not_before_min_turns(remote_config, llm_server):
    llm_server.script(op.FOLLOW_UP, [op.SATISFIED, "ok one more thing", op.SATISFIED])
    gen = InteractionGenerator(remote_config(generation={"min_turns": 2, "max_turns": 5}))
    ix = gen.generate_interaction("p1", PERSONA, "hi", target_turns=5)
    # turn 1: SATISFIED refused (min_turns 2), retried -> follow-up; turn 2: SATISFIED accepted
    assert ix.num_turns == 2 and ix.metadata["termination_reason"] == "satisfied"
    assert ix.get_trajectory()[1] == "ok one more thing"


def test_pool_weights_and_one_model_per_conversation_under_16_threads(remote_config, llm_server):
    pool = [{"model": "alpha", "weight": 6}, {"model": "beta", "weight": 3}, {"model": "gamma", "weight": 1}]
    cfg = remote_config(llm={"assistant": {"model_pool": pool}}, generation={"min_turns": 2, "max_turns": 2})
    llm_server.record_requests = False
    gen = InteractionGenerator(cfg)
    rows = [{"persona_id": f"p{i}", "persona_features": PERSONA, "queries": [{"adapted_query": f"q {i}",
                                                                               "original_query": f"q {i}"}]}
            for i in range(400)]
    interactions = gen.generate_interactions_batch(rows, show_progress=False, max_workers=16)
    assert len(interactions) == 400
    counts = collections.Counter()
    for ix in interactions:
        models = {m.metadata["model"] for m in ix.messages if m.role == "assistant"}
        assert len(models) == 1 and ix.metadata["assistant_model"] in models
        # the server saw the same model name that the messages claim
        assert f"[{ix.metadata['assistant_model']}]" in ix.messages[1].content
        counts[models.pop()] += 1
    assert 0.52 < counts["alpha"] / 400 < 0.68
    assert 0.22 < counts["beta"] / 400 < 0.38
    assert 0.05 < counts["gamma"] / 400 < 0.16


def test_assistant_sees_noisy_text_and_clean_text_is_kept(remote_config, llm_server):
    cfg = remote_config(distractor={"activation_probability": 1.0, "type": "semantic"})
    gen = InteractionGenerator.from_config(cfg)
    ix = gen.generate_interaction("p1", PERSONA, "book a table for two at 7pm", target_turns=2)
    first = ix.messages[0]
    assert first.metadata["was_noised"] and first.content == "book a table for two at 7pm umm idk"
    assert first.metadata["clean_text"] == "book a table for two at 7pm"
    noise = first.metadata["noise"]
    assert noise["layer"] in ("surface_noise", "incomplete_info", "semantic_ambiguity")
    assert noise["applied_strategies"] and noise["semantics"]["intent"] == "request_help"
    assert llm_server.requests_for(op.RESPOND)[0].body["messages"][-1]["content"] == first.content
    assert ix.metadata["noise"]["noised_turns"] == 2


def test_malformed_json_from_semantic_distractor_falls_back_to_clean_text(remote_config, llm_server):
    cfg = remote_config(distractor={"activation_probability": 1.0, "semantic": {"max_attempts": 2}})
    llm_server.script(op.EXTRACT_INTENT, ["```json\n{\"intent\": \"book\", \"slots\": {\"time\": \"7pm\"}}\n```"])
    llm_server.script(op.SEMANTIC_REWRITE, ["not json at all", json.dumps({"noisy_text": ""})])
    distractor = create_distractor_model(cfg, use_semantic=True)
    result = distractor.inject_noise("book a table at 7pm", force=True)
    assert not result.was_noised and result.noisy_text == "book a table at 7pm"
    assert "invalid JSON answer after 2 attempt(s)" in result.metadata["fallback_reason"]
    assert result.semantics == Semantics("book", {"time": "7pm"})
    assert result.activated and result.fallback_reason == result.metadata["fallback_reason"]
    assert len(llm_server.requests_for(op.SEMANTIC_REWRITE)) == 2
    # a request for JSON asks the server for the role's JSON schema
    assert llm_server.requests_for(op.SEMANTIC_REWRITE)[0].body["response_format"]["type"] == "json_schema"


def test_token_usage_sums_match_the_server(remote_config, llm_server):
    cfg = remote_config(distractor={"activation_probability": 0.5})
    llm_server.inject(Fault("status", 429, retry_after=0.01), Fault("status", 500))
    gen = InteractionGenerator.from_config(cfg)
    rows = [{"persona_id": f"p{i}", "persona_features": PERSONA, "queries": [f"question {i}"]} for i in range(12)]
    interactions = gen.generate_interactions_batch(rows, show_progress=False, max_workers=4)
    records = gen.spent.records()
    assert len(records) == llm_server.stats.ok
    assert sum(r.input_tokens for r in records) == llm_server.stats.prompt_tokens
    assert sum(r.output_tokens for r in records) == llm_server.stats.completion_tokens
    per_interaction = sum(len(ix.usage) for ix in interactions)
    assert per_interaction == len(records)  # every call is attributed to its interaction
    assert {r.module for r in records} >= {"style_transfer", "assistant", "user_simulator", "distractor"}


def test_a_failing_pair_returns_none_and_is_recorded(remote_config, llm_server):
    gen = InteractionGenerator(remote_config(pair_attempts=1))
    llm_server.inject(Fault("status", 400, operation=op.RESPOND))
    assert gen.generate_interaction("p1", PERSONA, "hi", target_turns=2, query_id="q9") is None
    [failure] = gen.failures
    assert failure.persona_id == "p1" and failure.query_id == "q9" and "HTTP 400" in failure.reason


def test_batch_saves_as_it_goes_and_a_rerun_skips_what_is_stored(remote_config, llm_server, tmp_path):
    cfg = remote_config(pair_attempts=1)
    rows = [{"persona_id": f"p{i}", "persona_features": PERSONA, "queries": [f"question {i}"]} for i in range(6)]
    llm_server.inject(Fault("status", 400, operation=op.REWRITE_QUERY))
    storage = InteractionStorage(tmp_path / "ix")
    gen = InteractionGenerator.from_config(cfg)
    first = gen.generate_interactions_batch(rows, show_progress=False, max_workers=3, storage=storage)
    assert len(first) == 5 and len(storage) == 5 and len(gen.failures) == 1
    before = len(llm_server.requests)
    again = InteractionGenerator.from_config(cfg).generate_interactions_batch(
        rows, show_progress=False, max_workers=3, storage=InteractionStorage(tmp_path / "ix"))
    assert len(again) == 6
    calls = llm_server.requests[before:]
    assert len({json.dumps(r.body["messages"][-1]) for r in calls if r.operation == op.REWRITE_QUERY}) <= 1
    assert sorted(ix.interaction_id for ix in first) == sorted(
        ix.interaction_id for ix in again if ix.interaction_id in {i.interaction_id for i in first})
    assert len(InteractionStorage(tmp_path / "ix")) == 6
