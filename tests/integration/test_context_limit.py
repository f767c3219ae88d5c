"""A conversation about to outgrow its model's context ends (`context_limit`) once min_turns are done,
and fails its pair before that: from a configured window and from the endpoint's own error."""

from personasim.errors import ContextExceeded
from personasim.interaction_generator import InteractionGenerator
from personasim.llm import operations as op
from personasim.pairs import expand_pairs
from personasim.testing import Fault

LONG = "Explain how a heat pump works in winter, " * 12


def pair():
    [made] = expand_pairs([("row 1", {"persona_id": "p1", "persona_features": {"role": "nurse"},
                                      "original_query": LONG})])
    return made


def test_a_configured_window_ends_the_conversation_at_its_last_complete_turn(remote_config, llm_server):
    llm_server.respond_with(op.RESPOND, lambda body: "A heat pump moves heat. " * 40)
    config = remote_config(generation={"transfer_probability": 0.0, "min_turns": 1, "max_turns": 5},
                           context_tokens=700, max_tokens=200)
    ix = InteractionGenerator(config).engine.generate(pair(), target_turns=5)
    assert ix.termination_reason == "context_limit" and 1 <= ix.num_turns < 5
    assert ix.messages[-1].role == "assistant" and len(ix.messages) == 2 * ix.num_turns
    for request in llm_server.requests:  # no request was sent that would not fit
        assert sum(len(m["content"]) for m in request.body["messages"]) // 4 + 200 <= 700


OVERFLOW = Fault("status", 400, message="This model's maximum context length is 1024 tokens. However, you "
                                       "requested 1162 tokens")


def _overflow_after(llm_server, answers):
    """The assistant answers `answers` times, then the endpoint says the request is over its context."""
    replies = iter(f"Answer {i}: it moves heat from the outside air." for i in range(answers))
    questions = iter(["ok, and does it still work when it is minus twenty outside?",
                      "what does the defrost cycle cost me on the bill?", "is a bigger unit quieter at night?"])
    llm_server.respond_with(op.RESPOND, lambda body: next(replies, OVERFLOW))
    llm_server.respond_with(op.FOLLOW_UP, lambda body: next(questions))


def test_the_endpoints_context_error_ends_the_conversation_after_min_turns(remote_config, llm_server):
    _overflow_after(llm_server, 2)
    generator = InteractionGenerator(remote_config(generation={"transfer_probability": 0.0, "min_turns": 2}))
    ix = generator.engine.generate(pair(), target_turns=4)
    assert ix.termination_reason == "context_limit" and ix.num_turns == 2 and len(ix.messages) == 4


def test_before_min_turns_the_pair_fails_with_the_reason(remote_config, llm_server):
    _overflow_after(llm_server, 1)
    generator = InteractionGenerator(remote_config(generation={"transfer_probability": 0.0, "min_turns": 3}))
    failed = generator.engine.generate(pair(), target_turns=4)
    assert failed.stage == "turn_loop" and "context_limit" in failed.reason and failed.permanent
    assert failed.attempts == 1  # permanent: not tried again


def test_context_exceeded_is_a_permanent_call_error():
    assert ContextExceeded("x").permanent
