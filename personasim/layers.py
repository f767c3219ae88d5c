"""The three semantic noise layers and their strategies, with the instruction each gives the LLM.

Domain data, read by the config (to validate) and the semantic distractor (to prompt): it imports nothing.
"""

from __future__ import annotations

LAYERS: dict[str, dict[str, str]] = {
    "surface_noise": {
        "colloquial_speech": "use casual, spoken-language phrasing and slang",
        "incomplete_sentence": "leave the sentence grammatically unfinished, as if typed in a hurry",
        "typo_misspelling": "introduce a few realistic typos and misspellings",
        "punctuation_format": "drop or misuse punctuation and capitalisation",
        "emotional_attitude": "add an emotional attitude (frustration, excitement, impatience)",
        "synonym_rewrite": "swap some words for synonyms",
        "word_segmentation": "merge or split a couple of words wrongly",
        "negative_expression": "phrase part of the request negatively (what the user does not want)",
        "real_life_fragments": "add an unrelated fragment from everyday life",
    },
    "incomplete_info": {
        "missing_slots": "omit one or more of the key details (slots) the request depends on",
        "vague_slot_values": "make the key details vague (\"something like\", \"around\", \"that thing\")",
        "context_dependency": "refer to earlier context that the assistant cannot see (\"the one I mentioned\")",
        "unclear_priority": "list needs without saying which matters most",
    },
    "semantic_ambiguity": {
        "multi_intent": "add a second, different request to the same message",
        "intent_ambiguity": "make it unclear what the user actually wants",
        "self_contradiction": "include two requirements that contradict each other",
        "mind_changing": "start with one request and then change one's mind mid-message",
    },
}

LAYER_NAMES = tuple(LAYERS)
LAYER_INDEX = {name: i + 1 for i, name in enumerate(LAYER_NAMES)}
STRATEGY_LAYER = {strategy: layer for layer, strategies in LAYERS.items() for strategy in strategies}

LAYER_GOALS = {
    "surface_noise": "keep the intent and every detail (slot) exactly; only the surface form changes",
    "incomplete_info": "keep the intent clear, but leave details missing or vague",
    "semantic_ambiguity": "make the intent uncertain, or mix several intents",
}
