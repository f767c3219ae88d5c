"""The batch journal: requests read a page at a time in the order asked, uploads planned while they
are read, what an upload carries read back without bodies, answers and requeues."""

from personasim.batch import journal as journal_module
from personasim.batch.journal import Journal
from personasim.batch.requests import Answer, BatchRequest


def request(n: int, model: str = "m1", schema: bool = False) -> BatchRequest:
    body = {"model": model, "messages": [{"role": "user", "content": f"question {n}"}]}
    if schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    return BatchRequest(f"ix{n}#1|respond", f"ix{n}", 1, f"h{n}", "ep", model, "assistant", "respond", "p1", body)


def test_queued_requests_come_a_page_at_a_time_in_order_while_uploads_are_planned(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_module, "PAGE", 3)
    journal = Journal(tmp_path / "journal.sqlite")
    for n in range(8):
        journal.ask(request(n, model="m2" if n == 4 else "m1"))
    seen: list[str] = []
    for custom_id, body in journal.queued("ep", "m1"):
        seen.append(custom_id)
        assert f"question {custom_id[2]}" in body
        if len(seen) == 2:  # an upload planned mid-read (as a round's first file goes up): the read goes on
            journal.plan("u1", "ep", "m1", 1, seen[:2], 100)
    assert seen == [f"ix{n}#1|respond" for n in (0, 1, 2, 3, 5, 6, 7)]
    assert [c for c, _ in journal.queued("ep", "m1")] == seen[2:]  # the planned two are no longer queued
    assert [c for c, _ in journal.queued("ep", "m2")] == ["ix4#1|respond"]
    journal.close()


def test_an_upload_is_read_back_without_bodies_and_answers_and_requeues_move_its_requests(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.ask(request(0))
    journal.ask(request(1, schema=True))
    journal.plan("u1", "ep", "m1", 1, ["ix0#1|respond", "ix1#1|respond"], 200)
    sent = journal.sent("u1")
    assert set(sent) == {"ix0#1|respond", "ix1#1|respond"}
    assert sent["ix1#1|respond"].response_type == "json_schema" and sent["ix0#1|respond"].response_type is None
    assert sent["ix0#1|respond"].interaction_id == "ix0" and sent["ix0#1|respond"].model == "m1"
    assert journal.body("ix1#1|respond")["response_format"]["type"] == "json_schema"
    journal.answer([("ix0#1|respond", Answer(text="hello", input_tokens=5, output_tokens=2))])
    journal.requeue(["ix1#1|respond"], count=True)
    assert set(journal.sent("u1")) == set()  # answered or back in the queue: the upload carries nothing open
    assert journal.known("ix0")[1].answer == Answer(text="hello", input_tokens=5, output_tokens=2)
    assert journal.body("ix0#1|respond") == {}  # an answered request's body is dropped
    assert [c for c, _ in journal.queued("ep", "m1")] == ["ix1#1|respond"]
    assert journal.waiting() == {"ix1"}
    journal.close()
