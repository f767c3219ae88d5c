"""One engine: the library's batch API and the Prefect flow give the same interactions."""

import hashlib
import json

import pyarrow.dataset as ds
import pytest

from personasim.dataset import Dataset
from personasim.interaction_generator import InteractionGenerator, InteractionStorage
from personasim.llm import operations as op
from personasim.records import Interaction

from conftest import PERSONA, write_config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def deterministic(server):
    """Replies that depend only on the request, so two runs of one seed can be compared."""

    def digest(body):
        return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:12]

    server.respond_with(op.RESPOND, lambda body: f"[{body['model']}] answer {digest(body)}")
    server.respond_with(op.FOLLOW_UP, lambda body: f"and what about {digest(body)}?")


def comparable(ix: Interaction) -> dict:
    """An interaction without what differs between two runs of it (times, latencies)."""
    data = ix.to_dict()
    del data["created_at"]
    for message in data["messages"]:
        del message["timestamp"]
    data["usage"] = sorted((u["module"], u["operation"], u["model"], u["input_tokens"], u["output_tokens"])
                           for u in data["usage"])
    return data


def test_library_batch_and_flow_make_identical_interactions(tmp_path, remote_config, llm_server):
    from personasim.flows.generate import generate_interactions

    deterministic(llm_server)
    pool = [{"model": "alpha", "weight": 2}, {"model": "beta", "weight": 1}]
    config = remote_config(distractor={"activation_probability": 0.6}, llm={"assistant": {"model_pool": pool}})
    rows = [{"persona_id": f"p{i}", "persona_features": PERSONA,
             "queries": [{"query_id": f"q{j}", "original_query": f"question {j} from p{i}"} for j in range(2)]}
            for i in range(8)]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))

    library = InteractionGenerator.from_config(config).generate_interactions_batch(
        rows, show_progress=False, max_workers=4, storage=InteractionStorage(tmp_path / "library"))
    summary = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / "flow"),
                                    config_path=str(write_config(tmp_path / "c.yaml", config)),
                                    max_concurrency=3, pairs_per_task=5)
    assert len(library) == summary["done"] == 16
    store = Dataset(tmp_path / "flow").interaction_storage()
    flow = {i: store.load_interaction(i) for i in store.ids()}
    assert {ix.interaction_id: comparable(ix) for ix in library} == {i: comparable(ix) for i, ix in flow.items()}
    # and the dataset's rows are those interactions
    table = ds.dataset(tmp_path / "flow" / "interactions", format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("interaction_id").to_pylist()) == sorted(flow)
    assert {len(ix.usage) for ix in library} == {len(ix.usage) for ix in flow.values()}
