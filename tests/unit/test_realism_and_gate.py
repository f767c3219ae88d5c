"""Realism figures on hand-counted conversations, and the gate's cheap rules."""

import pytest

from personasim.config.spec import GateConfig
from personasim.dataset.realism import diagnostics, mattr, means
from personasim.roles.gate import Draft, language_of, persona_language, rewrite_rules, user_turn_rules


def test_the_realism_figures_of_a_hand_counted_conversation():
    turns = ["please help me plan a cheap three day trip to Lisbon with my two kids",  # 15 words, polite
             "thanks, what about rain?",  # 4 words, polite, asks
             "this is taking forever, can you just list the museums"]  # 10 words, frustrated, asks ("can you")
    figures = diagnostics(turns)
    assert figures["first_turn_ratio"] == round(15 / 7, 4)
    assert figures["politeness_share"] == round(2 / 3, 4)
    assert figures["frustration_share"] == round(1 / 3, 4)
    assert figures["question_share"] == round(1 / 3, 4)  # "what about rain?" asks; "can you just" is mid-turn
    mean = 29 / 3
    spread = ((15 - mean) ** 2 + (4 - mean) ** 2 + (10 - mean) ** 2) / 3
    assert figures["length_cv"] == round(spread ** 0.5 / mean, 4)
    tokens = " ".join(turns).lower().split()
    assert figures["mattr"] == round(len(set(tokens)) / len(tokens), 4)  # fewer than 50 tokens: the plain ratio
    assert diagnostics(["just one turn"])["first_turn_ratio"] is None
    assert means([figures, {"first_turn_ratio": None, "mattr": 0.5}])["mattr"] == round((figures["mattr"] + 0.5) / 2,
                                                                                         4)


def test_mattr_moves_a_window_over_the_tokens():
    tokens = ["a", "b"] * 30  # 60 tokens, every window of 50 holds two types
    assert mattr(tokens, window=50) == pytest.approx(2 / 50)
    assert mattr(list("abcdefgh"), window=4) == 1.0 and mattr([]) is None


@pytest.mark.parametrize("text, reason", [
    ("Great question! Here is the fix you need.", "assistant_like"),
    ("thanks! is there anything else I can help you with?", "offers_help"),
    ("As a simulated user I would now ask about the museums", "fourth_wall"),
    ("## Plan\n- day one\n- day two\n- day three\n- day four", "assistant_like"),
])
def test_a_user_turn_that_is_not_a_users_is_caught(text, reason):
    assert user_turn_rules(Draft(text, {}), GateConfig())[0] == reason


def test_what_the_conversation_already_says_or_code_holds_is_not_caught():
    asked = Draft("ok but which language model should I fine-tune first?", {},
                  context=["how do I fine-tune a language model on my notes?"])
    assert user_turn_rules(asked, GateConfig()) is None
    assert user_turn_rules(Draft("why does `print('great question')` fail?", {}), GateConfig()) is None


def test_the_language_rule_knows_scripts_and_latin_languages():
    assert persona_language({"language": "Spanish"}) == "es" and persona_language({"role": "x"}) is None
    assert language_of("これはテストです。日本語で書いています。よろしくお願いします。ありがとう。") == "ja"
    assert language_of("¿cómo puedo centrar un div dentro de un contenedor flexible en mi página?") == "es"
    assert language_of("ok thanks") is None  # too short to tell
    spanish = {"language": "spanish"}
    english = Draft("and what should I do when the neighbours are loud at noon every single day?", spanish)
    assert user_turn_rules(english, GateConfig())[0] == "wrong_language"
    assert user_turn_rules(english, GateConfig(language=False)) is None
    assert user_turn_rules(Draft(english.text, spanish, offline=True), GateConfig()) is None


def test_a_rewrite_keeps_the_request_and_its_code():
    query = "why does `git stash pop` fail?"
    assert rewrite_rules(Draft("yo why does `git stash pop` fail", {}), query, GateConfig()) is None
    assert rewrite_rules(Draft("yo why does stash pop fail", {}), query, GateConfig())[0] == "code_lost"
    assert rewrite_rules(Draft("Stash pop fails on conflicts.", {}), "why does it fail?", GateConfig())[0] == (
        "not_a_request")
