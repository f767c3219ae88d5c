"""The quality section, figure by figure, on a dataset small enough to count by hand; one
conversation's messages lie in two waves (two files, two batches): the section streams the
messages table and must join them."""

from personasim.config import DistractorConfig
from personasim.dataset import Dataset
from personasim.dataset.quality import INTERACTION_COLUMNS, quality

TRIP = ("plan my trip to rome please", "pack light and book the train early")
BIKE = ("fix my bike chain", "clean it then oil every link")


def _message(interaction: str, role: str, content: str, **fields) -> dict:
    return {"interaction_id": interaction, "role": role, "content": content, "was_noised": False,
            "noise_layer": None, "noise_fallback": "", "truncated": False, **fields}


def _dataset(tmp_path) -> Dataset:
    dataset = Dataset(tmp_path / "ds")
    dataset.prepare()
    interactions = [
        {"interaction_id": "a", "original_query": "plan my trip", "initial_query": TRIP[0], "style_transferred": True,
         "style_transfer_fallback": None, "termination_reason": "satisfied",
         "violations": [{"role": "assistant", "reason": "truncated", "detail": "", "repaired": True}]},
        {"interaction_id": "b", "original_query": TRIP[0], "initial_query": TRIP[0], "style_transferred": False,
         "style_transfer_fallback": "answered instead of rewriting", "termination_reason": "satisfied",
         "violations": []},
        {"interaction_id": "c", "original_query": BIKE[0], "initial_query": BIKE[0], "style_transferred": False,
         "style_transfer_fallback": None, "termination_reason": "max_turns",
         "violations": [{"role": "user", "reason": "empty", "detail": "", "repaired": False}]},
    ]
    dataset.write_wave("run-w00000", "2026-11-27", "v1", {"interactions": interactions, "messages": [
        _message("a", "user", TRIP[0], was_noised=True, noise_layer="surface_noise"),
        _message("b", "user", TRIP[0], noise_fallback="unchanged"),  # drawn for noise, came back clean
        _message("b", "assistant", TRIP[1]),
    ]})
    dataset.write_wave("run-w00001", "2026-11-27", "v1", {"messages": [
        _message("a", "assistant", TRIP[1]),  # conversation a ends in this second file
        _message("c", "user", BIKE[0]),
        _message("c", "assistant", BIKE[1], truncated=True),
    ]})
    return dataset


def test_every_figure_counted_by_hand(tmp_path):
    dataset = _dataset(tmp_path)
    distractor = DistractorConfig(activation_probability=0.5)
    section = quality(dataset, dataset.table("interactions", list(INTERACTION_COLUMNS)), distractor)
    # user words: 6 + 6 + 4 = 16, unique 9 (my in both queries); bigrams 5 + 5 + 3 = 13, unique 8
    # assistant words: 7 + 7 + 6 = 20, unique 13; bigrams 6 + 6 + 5 = 17, unique 11
    assert section["diversity"] == {"user": {"distinct_1": 0.5625, "distinct_2": 0.6154},
                                    "assistant": {"distinct_1": 0.65, "distinct_2": 0.6471}}
    assert section["near_duplicate_rate"] == 0.6667  # a and b alike (a's reply from the second file), c apart
    assert section["rewrite_similarity"] == {"rewritten": 1, "mean": 0.6667, "median": 0.6667}
    assert section["style_transfer_fallback_rate"] == 0.3333
    assert section["noise"] == {"activation_rate": 0.6667, "noised_rate": 0.3333, "configured_probability": 0.5,
                                "difference": 0.1667}
    assert section["layer_mix"]["counts"] == {"surface_noise": 1}
    assert section["noise_fallback_rate"] == 0.5
    assert section["truncation_rate"] == 0.3333
    assert section["violations"] == {"before_repair": {"assistant": {"truncated": 1}, "user": {"empty": 1}},
                                     "after_repair": {"user": {"empty": 1}}}
    assert section["termination_reasons"] == {"satisfied": 2, "max_turns": 1}


def test_an_empty_dataset_has_no_rates_to_divide(tmp_path):
    dataset = Dataset(tmp_path / "ds")
    dataset.prepare()
    section = quality(dataset, dataset.table("interactions", list(INTERACTION_COLUMNS)))
    assert section["near_duplicate_rate"] == 0.0 and section["truncation_rate"] == 0.0
    assert section["diversity"]["user"] == {"distinct_1": 0.0, "distinct_2": 0.0}
