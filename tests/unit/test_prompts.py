"""Prompt templates: each renders for a sample persona, with no placeholder left unfilled."""

import pytest

from personasim.config import load_config
from personasim.distractor import DistractorModel, IntentSlotExtractor, SemanticDistractorModel, Semantics
from personasim.llm.factory import build_clients
from personasim.prompts import TEMPLATES, render, template
from personasim.records import Message
from personasim.roles.assistant import AssistantModel
from personasim.roles.style_transfer import StyleTransfer
from personasim.roles.user_simulator import UserFeedbackModel

PERSONA = {"role": "nurse", "communication_style": "formal", "tone": "polite"}


@pytest.fixture(scope="module")
def clients():
    return build_clients(load_config(None))


def prompts(clients):
    config = load_config(None).spec.distractor
    history = [Message("user", "how do I cut down on sugar", turn=1),
               Message("assistant", "start with drinks", turn=1, model="m")]
    semantic = SemanticDistractorModel(config, clients.distractor)
    yield StyleTransfer(clients.style_transfer, 1.0).prompt("how do I cut down on sugar", PERSONA)
    yield AssistantModel(clients.assistant_pool).prompt("and snacks?", history, None)
    yield UserFeedbackModel(clients.user_simulator).prompt(PERSONA, history, may_stop=True)
    yield UserFeedbackModel(clients.user_simulator).prompt(PERSONA, history, may_stop=False)
    yield IntentSlotExtractor(clients.distractor).prompt("book a table at 7pm")
    yield semantic.prompt("book a table at 7pm", "incomplete_info", ["missing_slots"],
                          Semantics("book", {"time": "7pm"}))
    yield DistractorModel(config, clients.distractor).paraphrase_prompt("book a table at 7pm")


def test_every_role_prompt_renders_from_its_template(clients):
    rendered = list(prompts(clients))
    assert {p.operation for p in rendered} == {"rewrite_query", "respond", "follow_up", "extract_intent",
                                               "semantic_rewrite", "paraphrase"}
    for prompt in rendered:
        system = prompt.messages[0]["content"]
        assert prompt.messages[0]["role"] == "system" and system.strip()
        assert "$" not in system, (prompt.operation, system)  # no placeholder left
    rewrite, _, may_stop, must_go_on, _, semantic, _ = rendered
    assert "- role: nurse" in rewrite.messages[0]["content"]
    # the stop rule changes from turn to turn: it comes last, after the transcript, so the system
    # prompt and the conversation so far stay one prefix a provider's prompt cache can serve
    assert "[SATISFIED]" in may_stop.messages[-1]["content"].split("--")[-1]
    assert "[SATISFIED]" not in must_go_on.messages[-1]["content"]
    assert may_stop.messages[0] == must_go_on.messages[0]
    assert may_stop.messages[-1]["content"].split("\n\n--\n")[0] == must_go_on.messages[-1]["content"].split(
        "\n\n--\n")[0]
    assert "missing_slots" in semantic.messages[0]["content"] and "incomplete_info" in semantic.messages[0]["content"]


def test_each_template_ships_and_every_placeholder_must_be_given():
    for name in TEMPLATES:
        names = template(name).get_identifiers()
        text = render(name, **{n: "X" for n in names})
        assert text.strip() and "$" not in text, name
        if names:
            with pytest.raises(KeyError):
                render(name)
    with pytest.raises(KeyError, match="no prompt template"):
        render("nonexistent")
