"""The typed records: round trips, the reference API's constructors, stores written by older versions."""

import pytest

from personasim.records import Interaction, Message, NoiseResult, Semantics, Usage


def test_the_reference_message_and_interaction_constructors_fill_the_fields():
    noise = NoiseResult("hi there", "hi thre", "rule_based", 0, ("typo",), activated=True)
    user = Message("user", "hi thre", "2026-01-01T00:00:00+00:00",
                   {"turn": 1, "clean_text": "hi there", "noise": noise.to_dict(), "is_initial": True})
    assistant = Message("assistant", "hello", metadata={"turn": 1, "model": "m", "provider": "openai"})
    assert (user.turn, user.clean_text, user.noise, user.was_noised) == (1, "hi there", noise, True)
    assert assistant.metadata == {"turn": 1, "model": "m", "provider": "openai", "finish_reason": None,
                                  "truncated": False}
    ix = Interaction("ix-1", "p1", {"role": "chef"}, "orig", "init", [user, assistant], 1,
                     {"assistant_model": "m", "stop_reason": "satisfied", "noise": {"ignored": "derived"}})
    assert (ix.assistant_model, ix.termination_reason, ix.noised_turns) == ("m", "satisfied", 1)
    assert ix.metadata["noise"]["strategies"] == ["typo"]
    with pytest.raises(ValueError, match="metadata key 'colour' has no field"):
        Message("user", "x", metadata={"colour": "red"})
    with pytest.raises(ValueError, match="metadata key 'mood' has no field"):
        Interaction("ix-1", "p1", {}, "o", "i", [], 0, {"mood": "fine"})


def test_an_interaction_round_trips_with_its_usage_and_semantics():
    usage = Usage("assistant", "respond", "m", "openai", 12, 34, 0.5, "ix-1")
    noise = NoiseResult("a", "b", "surface_noise", 1, ("typo_misspelling",), activated=True,
                        requested_strategies=("typo_misspelling",), semantics=Semantics("ask", {"x": "1"}, 0.5))
    ix = Interaction("ix-1", "p1", {"role": "chef"}, "orig", "init",
                     [Message("user", "b", turn=1, clean_text="a", noise=noise),
                      Message("assistant", "ok", turn=1, model="m", provider="openai")], 1,
                     target_turns=2, seed=3, usage=(usage,))
    again = Interaction.from_dict(ix.to_dict())
    assert again == ix and again.usage == (usage,) and again.messages[0].noise.semantics.slots == {"x": "1"}


def test_an_interaction_stored_by_an_older_version_loads():
    older = {"interaction_id": "ix-9", "persona_id": "p", "persona_features": {"a": "b"}, "original_query": "o",
             "initial_query": "i", "num_turns": 1, "query_id": "q", "created_at": "2026-01-01T00:00:00+00:00",
             "messages": [
                 {"role": "user", "content": "i!", "timestamp": "2026-01-01T00:00:00+00:00",
                  "metadata": {"turn": 1, "is_initial": True, "is_followup": False, "was_noised": True,
                               "clean_text": "i", "noise": {"original_text": "i", "noisy_text": "i!", "layer": "x",
                                                            "layer_index": 1, "applied_strategies": ["s"],
                                                            "metadata": {"activated": True}, "semantics": None}}},
                 {"role": "assistant", "content": "a", "timestamp": "2026-01-01T00:00:00+00:00",
                  "metadata": {"turn": 1, "model": "m", "provider": "offline"}}],
             "metadata": {"assistant_model": "m", "target_turns": 2, "stop_reason": "satisfied", "seed": 1,
                          "noise": {"noised_turns": 1}, "token_usage": {"calls": 3}}}
    ix = Interaction.from_dict(older)
    assert (ix.assistant_model, ix.target_turns, ix.seed, ix.noised_turns) == ("m", 2, 1, 1)
    assert ix.messages[0].noise is not None and ix.messages[0].noise.activated
