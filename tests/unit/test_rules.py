"""Rule-based noise: each strategy does what it claims, reproducibly, never emptying the text."""

import random

import pytest

from personasim.config import load_config
from personasim.distractor import DistractorModel, rules

TEXT = "Please help me make a fast plan to fix the big problem with my build"
UNICODE = "Café naïve résumé 👩‍💻 help me 🚀 with 東京 travel"


def test_typo_uses_keyboard_neighbours_and_keeps_length():
    noisy = rules.typo(TEXT, random.Random(1), intensity=0.2)
    assert noisy != TEXT and len(noisy) == len(TEXT)
    for a, b in zip(TEXT, noisy, strict=True):
        if a != b:
            assert b.lower() in rules.KEYBOARD_NEIGHBOURS[a.lower()]
            assert a.isupper() == b.isupper()


def test_word_swap_keeps_the_same_words():
    noisy = rules.word_swap(TEXT, random.Random(2), num_swaps=2)
    assert noisy != TEXT and sorted(noisy.split()) == sorted(TEXT.split())


def test_word_deletion_removes_but_never_empties():
    noisy = rules.word_deletion(TEXT, random.Random(3), deletion_rate=0.3)
    assert 0 < len(noisy.split()) < len(TEXT.split())
    assert set(noisy.split()) <= set(TEXT.split())
    assert rules.word_deletion("two words", random.Random(0), deletion_rate=1.0).split() in (["two"], ["words"])
    assert rules.word_deletion("single", random.Random(0), deletion_rate=1.0) == "single"


def test_word_insertion_adds_fillers():
    noisy = rules.word_insertion(TEXT, random.Random(4), insertion_rate=0.2)
    assert len(noisy.split()) > len(TEXT.split())
    assert any(f in noisy for f in rules.FILLERS)


def test_synonym_replacement_uses_the_table_and_keeps_case():
    noisy = rules.synonym_replacement("Help me fix it.", random.Random(5), replacement_rate=1.0)
    assert noisy == "Assist me repair it."
    assert rules.synonym_replacement("zzz qqq", random.Random(5)) == "zzz qqq"


@pytest.mark.parametrize("fn", [rules.typo, rules.word_swap, rules.word_deletion, rules.word_insertion,
                                rules.synonym_replacement])
def test_reproducible_under_a_seed_and_safe_on_unicode(fn):
    assert fn(TEXT, random.Random(42)) == fn(TEXT, random.Random(42))
    noisy = fn(UNICODE, random.Random(9))
    assert noisy.strip()
    assert "👩‍💻" in noisy and "東京" in noisy  # multi-codepoint emoji and CJK survive intact
    assert "🚀" in fn("🚀", random.Random(1))
    assert fn("", random.Random(1)) == ""


def test_distractor_model_reports_only_strategies_that_changed_the_text():
    cfg = load_config({"distractor": {"type": "rule_based", "activation_probability": 1.0,
                                      "rule_based": {"strategies": {"typo": {"probability": 1.0},
                                                                    "synonym_replacement": {"probability": 1.0},
                                                                    "word_swap": {"probability": 0.0}}}}})
    model = DistractorModel(cfg.spec.distractor)
    result = model.inject_noise("zzz qqq", rng=random.Random(1))
    assert result.applied_strategies == ("typo",)  # nothing in the synonym table
    result = model.inject_noise(TEXT, rng=random.Random(1))
    assert result.applied_strategies == ("typo", "synonym_replacement") and result.layer == "rule_based"
    assert model.inject_noise(TEXT, rng=random.Random(1)).noisy_text == result.noisy_text


def test_activation_probability_zero_leaves_text_clean_and_one_always_noises():
    off = DistractorModel(load_config({"distractor": {"activation_probability": 0.0}}).spec.distractor)
    on = DistractorModel(load_config({"distractor": {"activation_probability": 1.0}}).spec.distractor)
    rng = random.Random(0)
    assert all(not off.inject_noise(TEXT, rng).was_noised for _ in range(50))
    assert all(on.inject_noise(TEXT, rng).was_noised for _ in range(50))


def test_noisy_versions_are_distinct():
    model = DistractorModel(load_config({"distractor": {"activation_probability": 1.0}}).spec.distractor)
    versions = model.generate_noisy_versions(TEXT, 4, rng=random.Random(3))
    assert len(versions) >= 2 and len({v.text for v in versions}) == len(versions)
    assert all(v.text != TEXT for v in versions)
