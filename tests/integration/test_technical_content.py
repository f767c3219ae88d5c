"""Questions about code keep their code: markup, generics, format strings, shell variables, SQL and
regexes in a reply are content, not unfilled template slots (through the real `openai` client)."""

import json

import pytest

from personasim.interaction_generator import InteractionGenerator
from personasim.llm import operations as op
from personasim.pairs import expand_pairs
from personasim.testing.fake_openai import content_text

from conftest import PERSONA

QUERIES = [
    "Why does my <div> not center inside a flex container?",
    "List<String> vs ArrayList<String> in Java: which should a method return?",
    "How do I reserve capacity in a std::vector<int> before a loop?",
    "My f-string prints {name} literally instead of the value, why?",
    "cron does not expand $HOME in my crontab line, what do I write instead?",
    "Is SELECT * FROM orders WHERE id = {order_id} open to SQL injection?",
    "What does the regex ^<([a-z]+)>$ match, and why not <br/>?",
    "How do I read ${PATH} inside a Makefile recipe?",
    "Map<K, V> or Record<K, V> for a TypeScript lookup table?",
    "Explain `#include <stdio.h>` versus `#include \"stdio.h\"`",
]


def _last_user(body):
    return next(content_text(m["content"]) for m in reversed(body["messages"]) if m["role"] == "user")


def _quoting(llm_server):
    """Replies that quote what they were given, as real models do."""

    def rewrite(body):
        return "quick q, no basics please: " + json.loads(_last_user(body))["query"]

    def respond(body):
        text = _last_user(body)
        return f"About \"{text[:70]}\": here is the fix.\n```html\n<div class=\"wrap\">{{name}}</div>\n```\nUse $HOME."

    def follow_up(body):
        transcript = _last_user(body)
        quoted = transcript.split("ASSISTANT:")[-1].split("\n")[0][:60]
        return f"ok but {quoted.strip()} still breaks when the value is empty, why?"

    def intent(body):
        message = json.loads(_last_user(body))["message"]
        return json.dumps({"intent": "troubleshoot", "slots": {"code": message[:30]}, "confidence": 0.8})

    def noisy(body):
        return json.dumps({"noisy_text": "umm " + json.loads(_last_user(body))["message"] + " pls",
                           "applied_strategies": ["colloquial_speech"]})

    for operation, responder in ((op.REWRITE_QUERY, rewrite), (op.RESPOND, respond), (op.FOLLOW_UP, follow_up),
                                 (op.EXTRACT_INTENT, intent), (op.SEMANTIC_REWRITE, noisy)):
        llm_server.respond_with(operation, responder)


@pytest.mark.parametrize("distractor", ["semantic", "rule_based"])
def test_coding_questions_neither_fail_nor_fall_back_for_their_code(remote_config, llm_server, distractor):
    _quoting(llm_server)
    noise = {"enabled": True, "type": distractor, "activation_probability": 1.0,
             "rule_based": {"strategies": {"typo": {"probability": 0.0}, "paraphrase": {"probability": 1.0}}}}
    llm_server.respond_with(op.PARAPHRASE, lambda body: "in other words: " + _last_user(body))
    generator = InteractionGenerator(remote_config(generation={"transfer_probability": 1.0, "min_turns": 2,
                                                               "max_turns": 2}, distractor=noise))
    records = [("row", {"persona_id": "dev", "persona_features": PERSONA, "original_query": q}) for q in QUERIES]
    outcomes = generator.engine.run(expand_pairs(records))
    failed = [o.reason for o in outcomes if not hasattr(o, "messages")]
    assert failed == []
    for ix in outcomes:
        assert ix.style_transferred and ix.style_transfer_fallback is None
        assert ix.noise_fallbacks == [], ix.noise_fallbacks
        assert [v for v in ix.violations if not v.repaired] == []
        assert all(v.reason not in ("placeholder", "role_label", "transcript_continued") for v in ix.violations)
        assert ix.original_query in ix.initial_query
        assert "```html\n<div class=\"wrap\">{name}</div>\n```" in ix.messages[1].content  # the code kept whole


@pytest.mark.parametrize("reply", ["<revised message>", "[insert the rewritten query here]", "hey $persona here",
                                   "{user name} wants to know"])
def test_an_unfilled_slot_is_still_caught_beside_code(remote_config, llm_server, reply):
    llm_server.script(op.REWRITE_QUERY, [reply, "quick q: why is my <div> not centered"])
    generator = InteractionGenerator(remote_config(generation={"transfer_probability": 1.0}))
    [pair] = expand_pairs([("row", {"persona_id": "dev", "persona_features": PERSONA, "original_query": QUERIES[0]})])
    ix = generator.engine.generate(pair, target_turns=2)
    assert ix.initial_query == "quick q: why is my <div> not centered"
    assert ("style_transfer", "placeholder", True) in [(v.role, v.reason, v.repaired) for v in ix.violations]


def test_with_the_offline_backend_no_rewrite_or_noise_falls_back_for_code():
    """The offline stand-ins keep the query's code too (before: every rewrite fell back for 'placeholder')."""
    generator = InteractionGenerator({"seed": 3, "generation": {"transfer_probability": 1.0},
                                      "distractor": {"activation_probability": 1.0}})
    records = [("row", {"persona_id": f"dev{i}", "persona_features": PERSONA, "original_query": q})
               for i, q in enumerate(QUERIES)]
    outcomes = generator.engine.run(expand_pairs(records))
    assert all(ix.style_transferred and ix.noise_fallbacks == [] for ix in outcomes)
    assert [v for ix in outcomes for v in ix.violations if v.reason == "placeholder"] == []
