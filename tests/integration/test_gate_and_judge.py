"""The gate on user turns and rewrites (rules, then the judge), and the judge's scores, through the
real `openai` client: scripted verdicts, malformed judge replies, a judge that times out."""

import json

import pytest

from personasim.interaction_generator import InteractionGenerator
from personasim.llm import operations as op
from personasim.pairs import expand_pairs
from personasim.testing import Fault

PERSONA = {"role": "nurse", "communication_style": "casual", "language": "english"}
QUERY = "how do I sleep well after a night shift"
SCORES = {axis: {"score": score, "reason": f"{axis} reason"} for axis, score in (
    ("persona_adherence", 4), ("naturalness", 3), ("stop_timing", 5), ("personalization", 2), ("helpfulness", 4),
    ("coherence", 5))}


def pair(query=QUERY):
    [made] = expand_pairs([("row 1", {"persona_id": "p1", "persona_features": PERSONA, "original_query": query})])
    return made


def generator(remote_config, judge=True, **generation):
    llm = {"judge": {"model": "judge-model"}} if judge else {}
    return InteractionGenerator(remote_config(llm=llm, generation={"transfer_probability": 0.0, "min_turns": 1,
                                                                   **generation}))


def verdicts(message):
    return [(v.attempt, v.stage, v.outcome) for v in message.verdicts]


def test_a_user_turn_that_talks_like_an_assistant_is_written_again(remote_config, llm_server):
    llm_server.script(op.FOLLOW_UP, ["Great question! I'd be happy to help you with your sleep schedule.",
                                     "ok but what if the neighbours are loud at noon?"])
    ix = generator(remote_config, judge=False).engine.generate(pair(), target_turns=2)
    follow_up = ix.messages[2]
    assert follow_up.content == "ok but what if the neighbours are loud at noon?"
    assert verdicts(follow_up) == [(1, "rules", "fail"), (2, "rules", "pass")]
    assert follow_up.verdicts[0].reason.startswith("assistant_like")
    assert ("user_simulator", "assistant_like", True) in [(v.role, v.reason, v.repaired) for v in ix.violations]
    second = llm_server.requests_for(op.FOLLOW_UP)[1].body["messages"]
    assert "assistant_like" in second[-1]["content"]  # asked again with the reason


def test_the_judges_in_character_check_rejects_then_passes_and_every_verdict_is_kept(remote_config, llm_server):
    llm_server.script(op.JUDGE_TURN, [json.dumps({"verdict": "fail", "reason": "a nurse would not cite journals"}),
                                      json.dumps({"verdict": "pass", "reason": "sounds like her"})])
    llm_server.script(op.FOLLOW_UP, ["Per the 2019 meta-analysis, is melatonin efficacious?",
                                     "does melatonin even work for this?"])
    ix = generator(remote_config).engine.generate(pair(), target_turns=2)
    follow_up = ix.messages[2]
    assert follow_up.content == "does melatonin even work for this?"
    assert verdicts(follow_up) == [(1, "rules", "pass"), (1, "judge", "fail"), (2, "rules", "pass"),
                                   (2, "judge", "pass")]
    assert follow_up.verdicts[1].reason == "a nurse would not cite journals"
    judged = llm_server.requests_for(op.JUDGE_TURN)[0].body
    assert judged["response_format"]["json_schema"]["schema"]["properties"]["verdict"]["enum"] == ["pass", "fail"]
    assert json.loads(judged["messages"][1]["content"])["message"].startswith("Per the 2019")
    assert [u.module for u in ix.usage].count("judge") >= 3  # the checks and the scores, booked apart


@pytest.mark.parametrize("judge_replies, faults", [
    (["not json", '{"verdict": "maybe"}'], []),  # malformed twice
    ([], [Fault("slow", delay=3.0, operation=op.JUDGE_TURN)] * 5),  # times out on every try
])
def test_a_judge_that_cannot_answer_lets_the_turn_through_recorded_as_an_error(remote_config, llm_server,
                                                                               judge_replies, faults):
    llm_server.script(op.JUDGE_TURN, judge_replies)
    llm_server.inject(*faults)
    gen = InteractionGenerator(remote_config(llm={"judge": {"model": "judge-model", "timeout": 0.5}},
                                             generation={"transfer_probability": 0.0, "min_turns": 1},
                                             max_retries=1))
    llm_server.script(op.FOLLOW_UP, ["does melatonin even work for this?"])
    ix = gen.engine.generate(pair(), target_turns=2)
    assert ix.messages[2].content == "does melatonin even work for this?"
    assert [(v.stage, v.outcome) for v in ix.messages[2].verdicts] == [("rules", "pass"), ("judge", "error")]


def test_a_rewrite_the_judge_rejects_twice_falls_back_with_the_reason(remote_config, llm_server):
    llm_server.script(op.JUDGE_REWRITE, [json.dumps({"verdict": "fail", "reason": "it asks about naps instead"})] * 2)
    ix = generator(remote_config, transfer_probability=1.0).engine.generate(pair(), target_turns=1)
    assert not ix.style_transferred and ix.initial_query == QUERY
    assert ix.style_transfer_fallback == "judge_rejected: it asks about naps instead"
    assert [(v.stage, v.outcome) for v in ix.messages[0].verdicts] == [("rules", "pass"), ("judge", "fail")] * 2


def test_a_rewrite_that_drops_the_querys_code_is_written_again(remote_config, llm_server):
    query = "why does `git stash pop` fail with a conflict?"
    llm_server.script(op.REWRITE_QUERY, ["yo why does stash pop fail w a conflict?",
                                         "yo why does `git stash pop` fail w a conflict?"])
    ix = generator(remote_config, judge=False, transfer_probability=1.0).engine.generate(pair(query), target_turns=1)
    assert ix.initial_query == "yo why does `git stash pop` fail w a conflict?"
    assert ix.messages[0].verdicts[0].reason.startswith("code_lost")


def test_each_conversation_is_scored_on_every_axis_with_a_reason(remote_config, llm_server):
    llm_server.script(op.JUDGE_SCORE, [json.dumps(SCORES)])
    ix = generator(remote_config).engine.generate(pair(), target_turns=2)
    assert {(s.axis, s.score, s.reason, s.judge_model) for s in ix.scores} == {
        (axis, v["score"], v["reason"], "judge-model") for axis, v in SCORES.items()}
    request = llm_server.requests_for(op.JUDGE_SCORE)[0].body
    assert request["response_format"]["json_schema"]["schema"]["required"] == list(SCORES)
    assert "stop_timing:" in request["messages"][0]["content"]  # each axis's rubric, from its prompt file


def test_a_malformed_score_leaves_the_conversation_unscored_not_failed(remote_config, llm_server):
    missing_axis = {k: v for k, v in SCORES.items() if k != "coherence"}
    llm_server.script(op.JUDGE_SCORE, [json.dumps(missing_axis), json.dumps({**SCORES, "helpfulness": {"score": 9}})])
    ix = generator(remote_config).engine.generate(pair(), target_turns=2)
    assert ix.scores == () and ix.termination_reason is not None


def test_the_language_rule_asks_again_for_a_turn_in_another_language(remote_config, llm_server):
    persona = {**PERSONA, "language": "spanish"}
    [spanish] = expand_pairs([("row 1", {"persona_id": "p2", "persona_features": persona,
                                         "original_query": "como duermo bien despues del turno de noche"})])
    llm_server.script(op.FOLLOW_UP, ["ok but what should I do when the neighbours are loud at noon?",
                                     "vale, pero que hago si los vecinos hacen ruido al mediodia?"])
    ix = generator(remote_config, judge=False).engine.generate(spanish, target_turns=2)
    assert ix.messages[2].content.startswith("vale")
    assert ix.messages[2].verdicts[0].reason.startswith("wrong_language: written in 'en'")
