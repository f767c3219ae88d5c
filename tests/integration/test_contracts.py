"""Every role's contract, on crafted bad replies, through the real `openai` client over HTTP."""

import json

import pytest

from personasim.distractor import create_distractor_model
from personasim.interaction_generator import InteractionGenerator
from personasim.llm import operations as op
from personasim.testing import Cut

from conftest import PERSONA

QUERY = "how do I speed up my slow python data pipeline"


def generator(remote_config, **generation):
    return InteractionGenerator(remote_config(generation={"transfer_probability": 1.0, **generation}))


def violations(ix, role=None):
    return [(v.role, v.reason, v.repaired) for v in ix.violations if role in (None, v.role)]


def rewrite(gen, query=QUERY):
    """A style transfer through the engine (the reference API's generate_interaction takes it as given)."""
    from personasim.pairs import expand_pairs

    [pair] = expand_pairs([("row 1", {"persona_id": "p1", "persona_features": PERSONA, "original_query": query})])
    return gen.engine.generate(pair, target_turns=2)


@pytest.mark.parametrize("bad, reason", [
    ("Sure! To speed up your pipeline, you should profile it first and then vectorise the hot loops.",
     "answer_not_rewrite"),
    ("1. Profile the code\n2. Use numpy\n3. Cache results", "answer_not_rewrite"),
    ("<revised message>", "placeholder"),
    ("Rewrite the user's query as this person would type it to an AI assistant.", "template_echo"),
    (Cut("yo my python pipeline is slow af, how"), "truncated"),
    (" ".join(["really"] * 80), "length_ratio"),
])
def test_a_broken_rewrite_is_asked_again_with_the_reason_then_kept(remote_config, llm_server, bad, reason):
    llm_server.script(op.REWRITE_QUERY, [bad, "yo my python data pipeline is slow af, how do i speed it up"])
    ix = rewrite(generator(remote_config))
    assert ix.initial_query == "yo my python data pipeline is slow af, how do i speed it up"
    assert ("style_transfer", reason, True) in violations(ix) and ix.style_transferred
    second = llm_server.requests_for(op.REWRITE_QUERY)[1].body["messages"]
    assert second[-2]["content"] == (bad.text if isinstance(bad, Cut) else bad)  # the bad reply, shown back
    assert reason in second[-1]["content"]  # with the reason stated


def test_a_rewrite_broken_after_every_repair_falls_back_to_the_original_query(remote_config, llm_server):
    answer = "Certainly! You can use multiprocessing and profile with cProfile."
    llm_server.script(op.REWRITE_QUERY, [answer, answer])
    ix = rewrite(generator(remote_config))
    assert ix.initial_query == QUERY and not ix.style_transferred
    assert ix.style_transfer_fallback.startswith("answer_not_rewrite")
    assert violations(ix, "style_transfer") == [("style_transfer", "answer_not_rewrite", False)] * 2
    assert len(llm_server.requests_for(op.REWRITE_QUERY)) == 2  # repair_rounds 1: one more ask, no more


@pytest.mark.parametrize("wrapped, cleaned", [
    ('"yo my pipeline is slow, help"', "wrapping_quotes"),
    ("Here is the rewritten query: yo my pipeline is slow, help", "preamble"),
    ("User: yo my pipeline is slow, help", "role_label"),
])
def test_wrappers_are_cleaned_by_rule_and_recorded(remote_config, llm_server, wrapped, cleaned):
    llm_server.script(op.REWRITE_QUERY, [wrapped])
    ix = rewrite(generator(remote_config))
    assert ix.initial_query == "yo my pipeline is slow, help"
    assert violations(ix, "style_transfer") == [("style_transfer", cleaned, True)]
    assert len(llm_server.requests_for(op.REWRITE_QUERY)) == 1


@pytest.mark.parametrize("bad, reason", [
    ("PERSON: and what about memory?\n\nASSISTANT: Memory is...", None),  # label and transcript: cleaned
    ('""', "empty"),  # nothing inside the quotes
    ("answer 1: here is what to do about: hi", "copy_of_assistant"),
    ("ok and [SATISFIED] but also tell me more", "stop_signal_mixed"),
    ("<your follow-up message>", "placeholder"),
])
def test_a_user_turn_is_a_user_turn(remote_config, llm_server, bad, reason):
    llm_server.script(op.RESPOND, ["answer 1: here is what to do about: hi"])
    llm_server.script(op.FOLLOW_UP, [bad, "and what about memory?"])
    ix = generator(remote_config).generate_interaction("p1", PERSONA, "hi", target_turns=2)
    assert ix.get_trajectory() == ["hi", "and what about memory?"]
    found = violations(ix, "user_simulator")
    if reason is None:
        assert found == [("user_simulator", "transcript_continued", True), ("user_simulator", "role_label", True)]
    else:
        assert ("user_simulator", reason, True) in found
        assert {r for _, r, repaired in found if not repaired} == set()


def test_a_user_simulator_broken_for_good_ends_the_conversation_or_fails_the_pair(remote_config, llm_server):
    llm_server.respond_with(op.FOLLOW_UP, lambda body: "<message>")
    gen = generator(remote_config, min_turns=1, max_turns=3)
    ix = gen.generate_interaction("p1", PERSONA, "hi", target_turns=3)
    assert ix.num_turns == 1 and ix.termination_reason == "contract_failure"
    assert violations(ix, "user_simulator") == [("user_simulator", "placeholder", False)] * 2
    gen = generator(remote_config, min_turns=2, max_turns=3)  # not enough turns yet: the pair fails
    assert gen.generate_interaction("p1", PERSONA, "hi", target_turns=3) is None
    [failure] = gen.failures
    assert failure.stage == "turn_loop" and "placeholder" in failure.reason and failure.permanent


def test_termination_reasons(remote_config, llm_server):
    gen = generator(remote_config, min_turns=1, max_turns=3)
    assert gen.generate_interaction("p1", PERSONA, "hi", target_turns=2).termination_reason == "target_reached"
    assert gen.generate_interaction("p2", PERSONA, "hi", target_turns=3).termination_reason == "max_turns"
    llm_server.script(op.FOLLOW_UP, [op.SATISFIED])
    assert gen.generate_interaction("p3", PERSONA, "hi", target_turns=3).termination_reason == "satisfied"


@pytest.mark.parametrize("policy, requests, truncated, repaired", [
    ("retry", 2, False, True),   # the longer limit was enough
    ("keep", 1, True, False),
])
def test_an_assistant_reply_cut_at_the_limit_follows_the_policy(remote_config, llm_server, policy, requests,
                                                                 truncated, repaired):
    llm_server.script(op.RESPOND, [Cut("The first step is to")])
    config = remote_config(generation={"min_turns": 1, "max_turns": 1})
    config["contracts"] = {"truncation": policy}
    ix = InteractionGenerator(config).generate_interaction("p1", PERSONA, "hi", target_turns=1)
    responds = llm_server.requests_for(op.RESPOND)
    assert len(responds) == requests
    if policy == "retry":
        assert responds[1].body["max_tokens"] == 2 * responds[0].body["max_tokens"]
    answer = ix.messages[1]
    assert answer.truncated is truncated and answer.finish_reason == ("length" if truncated else "stop")
    assert violations(ix, "assistant") == [("assistant", "truncated", repaired)]


def test_fail_policy_fails_the_pair_on_a_cut_reply(remote_config, llm_server):
    llm_server.script(op.RESPOND, [Cut("The first step is to")])
    config = remote_config(generation={"min_turns": 1, "max_turns": 1})
    config["contracts"] = {"truncation": "fail"}
    gen = InteractionGenerator(config)
    assert gen.generate_interaction("p1", PERSONA, "hi", target_turns=1) is None
    assert "truncated" in gen.failures[0].reason


SLOTS = json.dumps({"intent": "book_table", "slots": {"time": "7pm", "party": "two people"}})


@pytest.mark.parametrize("replies, reason", [
    (["not json at all", "{\"noisy_text\": 3"], "malformed_json"),
    ([json.dumps({"applied_strategies": []}), json.dumps({"noisy_text": ""})], "schema"),
    ([json.dumps({"noisy_text": "<revised message>"})] * 2, "placeholder"),
    ([json.dumps({"noisy_text": "book a table plz"})] * 2, "slots_lost"),  # surface noise dropped the slots
    ([json.dumps({"noisy_text": "Book a table for two people at 7pm."})] * 2, "unchanged"),
])
def test_semantic_noise_that_breaks_its_contract_falls_back_labelled(remote_config, llm_server, replies, reason):
    config = remote_config(distractor={"activation_probability": 1.0, "semantic": {
        "max_attempts": 2, "layer_weights": {"surface_noise": 1.0, "incomplete_info": 0, "semantic_ambiguity": 0}}})
    llm_server.script(op.EXTRACT_INTENT, [SLOTS])
    llm_server.script(op.SEMANTIC_REWRITE, replies)
    result = create_distractor_model(config).inject_noise("Book a table for two people at 7pm.", force=True)
    assert not result.was_noised and result.activated
    assert f": {reason}: " in result.fallback_reason and "after 2 attempt(s)" in result.fallback_reason
    assert reason in llm_server.requests_for(op.SEMANTIC_REWRITE)[1].body["messages"][-1]["content"]


def test_surface_noise_that_keeps_the_slots_with_typos_passes(remote_config, llm_server):
    config = remote_config(distractor={"activation_probability": 1.0, "semantic": {
        "layer_weights": {"surface_noise": 1.0, "incomplete_info": 0, "semantic_ambiguity": 0}}})
    llm_server.script(op.EXTRACT_INTENT, [SLOTS])
    llm_server.script(op.SEMANTIC_REWRITE, [json.dumps({"noisy_text": "ok so bok a tabel for two ppl at 7pm"})])
    result = create_distractor_model(config).inject_noise("Book a table for two people at 7pm.", force=True)
    assert result.was_noised and result.layer == "surface_noise" and result.fallback_reason is None


def test_with_every_reply_cut_every_assistant_message_is_flagged_or_its_pair_failed(
        tmp_path, remote_config, llm_server, prefect_harness):
    import pyarrow.dataset as ds

    from personasim.flows.generate import generate_interactions

    from conftest import write_config, write_pairs

    llm_server.cut_every_reply()
    pairs = write_pairs(tmp_path / "pairs.jsonl", 6)
    cfg = write_config(tmp_path / "c.yaml", remote_config(distractor={"activation_probability": 0.5}))
    summary = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / "ds"),
                                    config_path=str(cfg), max_concurrency=4)
    assert summary["done"] + summary["failed"] == 6
    rows = ds.dataset(tmp_path / "ds" / "messages", format="parquet", partitioning="hive").to_table().to_pylist() \
        if summary["done"] else []
    assert all(r["truncated"] for r in rows if r["role"] == "assistant")
    interactions = ds.dataset(tmp_path / "ds" / "interactions", format="parquet",
                              partitioning="hive").to_table().to_pylist() if summary["done"] else []
    for row in interactions:
        assert any(v["reason"] == "truncated" and not v["repaired"] for v in row["violations"])
        assert row["truncated_turns"] == row["num_turns"]


def test_a_user_turn_cut_at_the_limit_keeps_its_whole_sentences_flagged(remote_config, llm_server):
    llm_server.script(op.FOLLOW_UP, [Cut("and what about memory? I also keep wondering whether the")])
    ix = generator(remote_config).generate_interaction("p1", PERSONA, "hi", target_turns=2)
    assert ix.get_trajectory()[1] == "and what about memory?"
    assert violations(ix, "user_simulator") == [("user_simulator", "trimmed_at_limit", True)]
    llm_server.script(op.FOLLOW_UP, [Cut("and what about"), "and memory?"])  # nothing whole: asked again
    ix = generator(remote_config).generate_interaction("p2", PERSONA, "hi", target_turns=2)
    assert ix.get_trajectory()[1] == "and memory?"
    assert violations(ix, "user_simulator") == [("user_simulator", "truncated", True)]
