"""Persona banks and the sampler: layouts, weights and exclusions checked at load, the sampling rules,
diversity, determinism and growth."""

import itertools
from collections import Counter

import pytest

from personasim.config.personas import SamplingSettings
from personasim.errors import ConfigError
from personasim.personas import PersonaSampler, load_bank, persona_id_for
from personasim.personas.bank import parse_bank
from personasim.personas.diversity import mean_distance, min_distance
from personasim.personas.stats import distances, encode

SMALL = """
dimensions:
  size: {name: size, is_constraint: true, values: [s, m, l]}
  colour: {name: colour, is_constraint: false, values: [red, green, blue, black]}
  age_band: {name: age_band, is_constraint: false, values: [u18, 18_24, 25_34]}
  seniority: {name: seniority, is_constraint: false, values: [junior, senior, c_level]}
exclusions:
  - when: {age_band: u18}
    exclude: {seniority: [senior, c_level]}
"""


def hamming(a, b):
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def test_the_default_bank_has_over_thirty_dimensions_with_weights_and_exclusions():
    bank = load_bank()
    assert len(bank.dimensions) >= 30
    names = {d.name for d in bank.dimensions}
    assert {"role", "age_band", "seniority", "education", "language", "communication_style", "tone",
            "technical_level", "query_length_pref", "explanation_style", "domain_interest"} <= names
    assert bank.by_name["age_band"].values[1] == "18_24" and bank.by_name["language"].weights is not None
    assert bank.exclusions and all(d.description for d in bank.dimensions)


def test_both_personagym_layouts_read_and_underscored_numbers_stay_text():
    listed = parse_bank("dimensions:\n  - {name: age_band, is_constraint: true, type: categorical, "
                        "category: basic_info, description: age, values: [18_24, 25_34]}\n", "list.yaml")
    mapped = parse_bank("dimensions:\n  age_band: {name: age_band, is_constraint: true, values: [18_24, 25_34]}\n",
                        "map.yaml")
    assert listed.dimensions[0].values == mapped.dimensions[0].values == ("18_24", "25_34")


@pytest.mark.parametrize("text, message", [
    ("dimensions:\n  a: {name: a, values: [x, y], weights: {x: 1}}\n",
     r"dimension 'a': weights: value 'y' has no weight"),
    ("dimensions:\n  a: {name: a, values: [x, y], weights: {x: 1, z: 1}}\n", r"value 'z' is not one of"),
    ("dimensions:\n  a: {name: a, values: [x, y], weights: {x: -1, y: 1}}\n", r"value 'x': weight must be"),
    ("dimensions:\n  a: {name: a, values: [x, x]}\n", r"dimension 'a': value 'x': listed twice"),
    ("dimensions:\n  a: {name: a, values: []}\n", r"dimension 'a': values: must be a non-empty list"),
    ("dimensions:\n  a: {name: a, values: [x], colour: red}\n", r"dimension 'a': colour: unknown key"),
    ("dimensions:\n  a: {name: a, values: [x]}\nexclusions:\n  - when: {a: x}\n    exclude: {b: y}\n",
     r"exclusions\[0\].exclude: dimension 'b' is not in the bank"),
    ("dimensions:\n  a: {name: a, values: [x]}\n  b: {name: b, values: [y]}\nexclusions:\n"
     "  - when: {a: x}\n    exclude: {b: z}\n", r"exclusions\[0\].exclude: dimension 'b': value 'z' is not one"),
    ("people: []\n", r"a persona bank needs a 'dimensions' section"),
])
def test_a_bad_bank_is_refused_at_load_naming_file_dimension_and_value(text, message):
    with pytest.raises(ConfigError, match=r"^bank.yaml: .*" + message):
        parse_bank(text, "bank.yaml")


def test_constraints_always_bounds_and_required_dimensions_hold():
    bank = load_bank()
    settings = SamplingSettings(min_features=12, max_features=20, required_dimensions=("domain_interest",),
                                feature_availability_rate=0.9)
    personas = PersonaSampler(bank, settings, seed=1).sample(300)
    constraints = {d.name for d in bank.dimensions if d.is_constraint}
    for p in personas:
        assert constraints <= set(p.features) and "domain_interest" in p.features
        assert 12 <= len(p.features) <= 20
        assert not any(rule.broken_by(p.features) for rule in bank.exclusions)
        assert p.persona_id == persona_id_for(p.features)


def test_every_pair_of_personas_is_at_least_the_minimum_distance_apart():
    bank = parse_bank(SMALL, "small.yaml")
    personas = PersonaSampler(bank, SamplingSettings(min_hamming_distance=2, max_retries=500), seed=3).sample(25)
    assert min(hamming(a.features, b.features) for a, b in itertools.combinations(personas, 2)) >= 2
    assert all(not (p.features.get("age_band") == "u18" and p.features.get("seniority") in ("senior", "c_level"))
               for p in personas)


def test_too_many_personas_for_the_distance_is_a_clear_error_before_sampling():
    bank = parse_bank(SMALL, "small.yaml")
    sampler = PersonaSampler(bank, SamplingSettings(min_hamming_distance=3), seed=0)
    with pytest.raises(ConfigError, match=r"small.yaml: at most 12 personas can be 3 features apart"):
        sampler.sample(13)
    tight = PersonaSampler(bank, SamplingSettings(min_hamming_distance=3, max_retries=3), seed=0)
    with pytest.raises(ConfigError, match=r"persona \d+: none of 3 candidates was 3 features away"):
        tight.sample(12)


def test_stratified_covers_every_value_before_any_repeats():
    bank = load_bank()
    personas = PersonaSampler(bank, SamplingSettings(strategy="stratified"), seed=5).sample(200)
    for dim in ("communication_style", "tone", "technical_level", "query_length_pref"):  # constraint: no exclusion
        counts = Counter(p.features[dim] for p in personas)
        assert set(counts) == set(bank.by_name[dim].values) and max(counts.values()) - min(counts.values()) <= 1


def test_weighted_follows_the_banks_target_shares():
    bank = load_bank()
    personas = PersonaSampler(bank, SamplingSettings(strategy="weighted", min_hamming_distance=1), seed=2).sample(4000)
    share = Counter(p.features["language"] for p in personas)["english"] / 4000
    assert abs(share - 0.52) < 0.03
    uniform = PersonaSampler(bank, SamplingSettings(min_hamming_distance=1), seed=2).sample(4000)
    assert abs(Counter(p.features["language"] for p in uniform)["english"] / 4000 - 1 / 8) < 0.03


def test_deterministic_under_the_seed_and_growth_keeps_the_first_personas():
    bank = load_bank()
    sampler = PersonaSampler(bank, SamplingSettings(), seed=11)
    fifty, hundred = sampler.sample(50), sampler.sample(100)
    assert hundred[:50] == fifty
    assert [p.persona_id for p in PersonaSampler(bank, SamplingSettings(), seed=12).sample(50)] != [
        p.persona_id for p in fifty]
    stored = [fifty[3], fifty[7]]  # personas a dataset holds keep their places, the rest are drawn as before
    assert sampler.sample(50, existing=stored) == fifty


def test_distances_are_found_without_comparing_every_pair():
    bank = load_bank()
    personas = PersonaSampler(bank, SamplingSettings(min_hamming_distance=3), seed=4).sample(300)
    codes, sizes = encode([p.features for p in personas])
    brute = min(hamming(a.features, b.features) for a, b in itertools.combinations(personas, 2))
    assert min_distance(codes, sizes, cap=40) == brute
    pairs = list(itertools.combinations(personas, 2))
    assert mean_distance(codes) == pytest.approx(sum(hamming(a.features, b.features) for a, b in pairs) / len(pairs))
    summary = distances([p.features for p in personas], at_least=3, search=1)
    assert summary["min"] >= 3 and summary["min_exact"] == (brute <= 3)
