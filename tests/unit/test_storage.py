"""Storage: round-trip, atomic writes, no duplicates, ids cannot escape the directory."""

import json
import os

import pytest

from personasim.errors import StorageError
from personasim.interaction_generator import Interaction, InteractionStorage, Message


def make_interaction(interaction_id="ix-1", turns=2, text="hello") -> Interaction:
    messages = []
    for turn in range(1, turns + 1):
        messages.append(Message("user", f"{text} {turn}", metadata={"turn": turn, "clean_text": f"{text} {turn}"}))
        messages.append(Message("assistant", f"answer {turn}", metadata={"turn": turn, "model": "m"}))
    return Interaction(interaction_id, "p1", {"role": "chef"}, "orig", "init", messages, turns,
                       {"noise": {"noised_turns": 0}}, query_id="q1")


def test_round_trip(tmp_path):
    storage = InteractionStorage(tmp_path)
    original = make_interaction(text="naïve 🚀 \"quoted\" {json}")
    path = storage.save(original)
    assert os.path.dirname(path) == str(tmp_path)
    assert Interaction.from_dict(storage.load("ix-1")) == original
    assert storage.load_interaction("ix-1").get_trajectory() == ["naïve 🚀 \"quoted\" {json} 1",
                                                                  "naïve 🚀 \"quoted\" {json} 2"]
    assert [d["interaction_id"] for d in InteractionStorage(tmp_path).load_all()] == ["ix-1"]


def test_resave_does_not_duplicate(tmp_path):
    storage = InteractionStorage(tmp_path)
    storage.save(make_interaction())
    storage.save(make_interaction(text="changed"))
    assert len(storage) == 1
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 1
    assert storage.load("ix-1")["messages"][0]["content"] == "changed 1"
    assert len(InteractionStorage(tmp_path).load_all()) == 1


def test_crash_mid_write_leaves_the_old_state_readable(tmp_path, monkeypatch):
    storage = InteractionStorage(tmp_path)
    storage.save(make_interaction(text="old"))

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="No space left on device"):
        storage.save(make_interaction(text="new"))
    monkeypatch.undo()
    assert storage.load("ix-1")["messages"][0]["content"] == "old 1"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the temp file is cleaned up


def test_torn_files_from_an_earlier_crash_are_tolerated(tmp_path):
    storage = InteractionStorage(tmp_path)
    storage.save(make_interaction("ix-a"))
    # a crash left: a half-written temp file, a torn index line, and a file whose index line never landed
    (tmp_path / ".ix-b.json.123.tmp").write_text('{"interaction_id": "ix-b", "mess')
    with open(tmp_path / "index.jsonl", "a") as handle:
        handle.write('{"interaction_id": "ix-')
    (tmp_path / "ix-c.json").write_text(json.dumps(make_interaction("ix-c").to_dict()))
    reopened = InteractionStorage(tmp_path)
    assert sorted(reopened.ids()) == ["ix-a", "ix-c"]
    assert [json.loads(line)["interaction_id"] for line in (tmp_path / "index.jsonl").read_text().splitlines()] \
        == ["ix-a", "ix-c"]


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "a/b", "..", ".", "/abs", "x\x00y", "new\nline",
                                     "~user", "%2F", "a" * 400])
def test_ids_cannot_escape_the_directory(tmp_path, hostile):
    store_dir = tmp_path / "store"
    storage = InteractionStorage(store_dir)
    path = storage.save(make_interaction(hostile))
    assert os.path.dirname(path) == str(store_dir)
    assert not os.path.basename(path).startswith(".")
    assert len(os.path.basename(path)) < 255
    assert storage.load(hostile)["interaction_id"] == hostile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_distinct_ids_get_distinct_files(tmp_path):
    storage = InteractionStorage(tmp_path)
    ids = ["a/b", "a%2Fb", "a.b", "a%2Eb", "a" * 400, "a" * 401]
    for i in ids:
        storage.save(make_interaction(i))
    assert len({storage.path_for(i) for i in ids}) == len(ids)
    assert sorted(InteractionStorage(tmp_path).ids()) == sorted(ids)


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create interaction directory"):
        InteractionStorage(blocker / "sub")


def test_load_unknown_id_raises_keyerror(tmp_path):
    with pytest.raises(KeyError, match="no stored interaction"):
        InteractionStorage(tmp_path).load("nope")
