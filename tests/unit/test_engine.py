"""The engine on the offline backend: determinism, stored work, the batch API over it."""

from personasim.config import load_config
from personasim.engine import Engine
from personasim.interaction_generator import InteractionStorage
from personasim.pairs import expand_pairs

PERSONA = {"role": "engineer", "communication_style": "casual", "tone": "friendly"}


def pairs(n):
    return expand_pairs((f"row {i}", {"persona_id": f"p{i}", "persona_features": PERSONA,
                                      "queries": [f"how do I test module {i}"]}) for i in range(n))


def conversation(ix):
    return [(m.role, m.content, m.clean_text) for m in ix.messages]


def test_the_same_seed_gives_the_same_conversations_whatever_the_concurrency():
    config = load_config({"seed": 4, "distractor": {"activation_probability": 0.7}})
    one = Engine.from_config(config, concurrency=1).run(pairs(12))
    many = Engine.from_config(config, concurrency=6).run(pairs(12))
    assert [conversation(ix) for ix in one] == [conversation(ix) for ix in many]
    other = Engine.from_config(config.with_seed(5), concurrency=6).run(pairs(12))
    assert [ix.interaction_id for ix in other] != [ix.interaction_id for ix in one]
    assert all(len(ix.usage) >= 3 and {u.interaction_id for u in ix.usage} == {ix.interaction_id} for ix in one)


def test_triage_recovers_what_is_stored_and_skips_what_is_in_the_dataset(tmp_path):
    engine = Engine.from_config(load_config({"seed": 1}), store=InteractionStorage(tmp_path))
    first = engine.run(pairs(3))
    triage = engine.triage(pairs(5), in_dataset={first[0].interaction_id})
    assert triage.skipped == [first[0].interaction_id]
    assert triage.recover == [ix.interaction_id for ix in first[1:]]
    assert [p.persona_id for p in triage.todo] == ["p3", "p4"]
    assert engine.recover(triage.recover) == first[1:]  # read back whole, usage included


def test_pairs_started_ahead_are_joined_once_never_generated_twice(tmp_path):
    engine = Engine.from_config(load_config({"seed": 1}), store=InteractionStorage(tmp_path), concurrency=2)
    todo = pairs(6)
    engine.start(todo)
    engine.start(todo[:3])  # started again: still once
    assert engine.settle(60) == 6  # done and stored, nobody has asked for them yet
    calls = len(engine.spent.records())
    triage = engine.triage(todo, in_dataset=set())
    assert triage.recover == [] and len(triage.todo) == 6  # stored, but this engine's own: joined, not recovered
    outcomes = engine.run(todo[:4])
    assert len(engine.spent.records()) == calls  # joined: no call made again
    assert [ix.persona_id for ix in outcomes] == ["p0", "p1", "p2", "p3"]
    assert sorted(engine.triage(todo, in_dataset=set()).recover) == sorted(ix.interaction_id for ix in outcomes)
    assert len(engine.run(todo[4:])) == 2 and len(engine.spent.records()) == calls
    assert {u.interaction_id for u in engine.spent.records()} == {engine.interaction_id(p) for p in todo}


def test_a_stopped_engine_begins_none_of_the_pairs_started_ahead(tmp_path):
    store = InteractionStorage(tmp_path)
    engine = Engine.from_config(load_config({"seed": 1}), store=store, concurrency=1)
    engine.stop("interrupted")  # nothing begins
    engine.start(pairs(4))
    assert engine.settle(10) == 0
    engine.close()
    assert store.ids() == [] and engine.spent.records() == []


def test_the_longest_conversations_start_first_and_outcomes_keep_the_input_order():
    engine = Engine.from_config(load_config({"seed": 3}), concurrency=1)  # one pair at a time: starts in order
    batch = pairs(12)
    targets = [engine.stages.target_turns(p, engine.interaction_id(p)) for p in batch]
    assert len(set(targets)) > 1  # the seed draws several lengths, so the order below means something
    started = [batch[i].persona_id for i in engine.start_order(batch)]
    assert [targets[int(pid[1:])] for pid in started] == sorted(targets, reverse=True)
    assert [p.persona_id for p in engine.triage(batch, in_dataset=set()).todo] == started
    seen = []
    outcomes = engine.run(batch, on_outcome=lambda o: seen.append(o.persona_id))
    assert seen == started
    assert [o.persona_id for o in outcomes] == [p.persona_id for p in batch]
    assert [o.target_turns for o in outcomes] == targets
