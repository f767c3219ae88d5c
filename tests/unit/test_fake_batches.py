"""The test server's Files and Batch APIs and its prompt-cache usage, through the real `openai` client."""

import json
import time
import urllib.request

import openai
import pytest

from personasim.testing import Cut, FakeOpenAIServer, Fault

ENDPOINT = "/v1/chat/completions"


@pytest.fixture
def server():
    with FakeOpenAIServer(seed=3) as fake:
        yield fake


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-batch", max_retries=0)


def request_line(custom_id, content="hello there", model="fake-model", url=ENDPOINT, method="POST", **body):
    return {"custom_id": custom_id, "method": method, "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": content}], **body}}


def submit(client, lines):
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h",
                                 metadata={"run": "test"})


def file_lines(client, file_id):
    """A result file's lines by custom_id."""
    assert file_id is not None
    lines = [json.loads(text) for text in client.files.content(file_id).text.splitlines() if text.strip()]
    return {line["custom_id"]: line for line in lines}


def test_a_file_is_uploaded_listed_read_and_deleted(client, server):
    data = b'{"custom_id": "a"}\r\n{"text": "h\xc3\xa9"}\n'
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    assert (uploaded.object, uploaded.bytes, uploaded.filename, uploaded.purpose, uploaded.status) == \
        ("file", len(data), "in.jsonl", "batch", "processed")
    other = client.files.create(file=("b.jsonl", b"{}\n"), purpose="user_data")
    assert [f.id for f in client.files.list()] == [other.id, uploaded.id]
    assert [f.id for f in client.files.list(purpose="batch")] == [uploaded.id]
    assert client.files.retrieve(uploaded.id).filename == "in.jsonl"
    assert client.files.content(uploaded.id).content == data
    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("c.jsonl", b"{}"), purpose="nonsense")
    assert server.stats.files_uploaded == 2


def test_a_batch_runs_every_line_once_with_the_chat_replies_and_usage(client, server):
    lines = [request_line(f"pair-{i}|respond", f"question number {i}") for i in range(6)]
    lines.append(request_line("pair-9", "what now", metadata={"personasim_operation": "follow_up"}))
    lines.append(request_line("plain", "no operation at all"))
    created = submit(client, lines)
    assert created.status == "validating" and created.expires_at == created.created_at + 86_400
    batch = client.batches.retrieve(created.id)
    assert batch.status == "completed" and batch.error_file_id is None and batch.model == "fake-model"
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (8, 8, 0)
    output = file_lines(client, batch.output_file_id)
    assert set(output) == {line["custom_id"] for line in lines}
    assert list(output) != [line["custom_id"] for line in lines]  # shuffled, as the API does not keep the order
    answer = output["pair-3|respond"]
    assert answer["id"].startswith("batch_req_") and answer["error"] is None
    assert answer["response"]["status_code"] == 200
    assert "question number 3" in answer["response"]["body"]["choices"][0]["message"]["content"]
    assert output["pair-9"]["response"]["body"]["choices"][0]["message"]["content"].startswith("follow-up")
    usages = [line["response"]["body"]["usage"] for line in output.values()]
    assert batch.usage.input_tokens == sum(u["prompt_tokens"] for u in usages) > 0
    assert batch.usage.output_tokens == sum(u["completion_tokens"] for u in usages)
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens
    assert client.batches.retrieve(created.id).output_file_id == batch.output_file_id  # nothing ran twice
    assert server.stats.batch_lines == server.stats.requests == 8 and server.stats.batches_created == 1
    assert set(server.stats.executed_custom_ids.values()) == {1}
    assert {r.custom_id: r.operation for r in server.requests} == {
        **{f"pair-{i}|respond": "respond" for i in range(6)}, "pair-9": "follow_up", "plain": ""}
    assert all(r.authorization == "Bearer sk-batch" for r in server.requests)


def test_a_batch_line_takes_scripted_replies_cuts_and_schemas(client, server):
    server.script("respond", ["scripted answer", Cut("cut short")])
    schema = {"type": "object", "properties": {"label": {"enum": ["yes", "no"]}}}
    lines = [request_line("a|respond"), request_line("b|respond"),
             request_line("c|judge", response_format={"type": "json_schema",
                                                      "json_schema": {"name": "J", "schema": schema}})]
    output = file_lines(client, client.batches.retrieve(submit(client, lines).id).output_file_id)
    choices = {cid: line["response"]["body"]["choices"][0] for cid, line in output.items()}
    assert [(c["message"]["content"], c["finish_reason"]) for c in (choices["a|respond"], choices["b|respond"])] == [
        ("scripted answer", "stop"), ("cut short", "length")]  # lines run in input order
    assert json.loads(choices["c|judge"]["message"]["content"]) == {"label": "yes"}


def test_injected_faults_land_in_the_error_file(client, server):
    server.inject(Fault("status", 500, operation="respond", message="boom"), Fault("drop", operation="judge"))
    lines = [request_line("a|respond"), request_line("b|judge"), request_line("c|respond")]
    batch = client.batches.retrieve(submit(client, lines).id)
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    errors = file_lines(client, batch.error_file_id)
    assert errors["a|respond"]["error"] is None
    assert errors["a|respond"]["response"]["status_code"] == 500
    assert errors["a|respond"]["response"]["body"]["error"]["message"] == "boom"
    assert errors["b|judge"]["response"] is None and errors["b|judge"]["error"]["code"] == "request_timeout"
    assert set(file_lines(client, batch.output_file_id)) == {"c|respond"}
    assert server.stats.faults == {"500": 1, "drop": 1} and server.stats.batch_lines == 3


def test_an_expired_batch_answers_its_first_lines_and_expires_the_rest(client, server):
    server.expire_next_batch(answered=2)
    lines = [request_line(f"line-{i}") for i in range(5)]
    batch = client.batches.retrieve(submit(client, lines).id)
    assert batch.status == "expired" and batch.expired_at and batch.completed_at is None
    assert set(file_lines(client, batch.output_file_id)) == {"line-0", "line-1"}
    errors = file_lines(client, batch.error_file_id)
    assert set(errors) == {"line-2", "line-3", "line-4"}
    assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in errors.values())
    assert server.stats.executed_custom_ids == {"line-0": 1, "line-1": 1}
    assert client.batches.retrieve(submit(client, lines).id).status == "completed"  # only the next batch


def test_a_cancelled_batch_runs_nothing_and_a_completed_one_cannot_be_cancelled(client, server):
    server.slow_batches(1, 60.0)
    slow = submit(client, [request_line("x"), request_line("y")])
    assert client.batches.cancel(slow.id).status == "cancelling"
    cancelled = client.batches.retrieve(slow.id)
    assert cancelled.status == "cancelled" and cancelled.cancelling_at and cancelled.cancelled_at
    assert cancelled.output_file_id is None and cancelled.request_counts.failed == 2
    assert {e["error"]["code"] for e in file_lines(client, cancelled.error_file_id).values()} == {"batch_cancelled"}
    assert server.stats.batch_lines == 0
    done = submit(client, [request_line("z")])
    with pytest.raises(openai.ConflictError, match="completed"):
        client.batches.cancel(done.id)
    assert server.stats.executed_custom_ids == {"z": 1}


@pytest.mark.parametrize(("lines", "code", "line"), [
    ([request_line("a"), request_line("a")], "duplicate_custom_id", 2),
    ([request_line("a"), request_line("b", model="other-model")], "model_mismatch", 2),
    ([request_line("a", url="/v1/embeddings")], "url_mismatch", 1),
    ([request_line("a", method="GET")], "invalid_method", 1),
])
def test_an_invalid_input_file_fails_the_batch(client, server, lines, code, line):
    batch = client.batches.retrieve(submit(client, lines).id)
    assert batch.status == "failed" and batch.failed_at and batch.output_file_id is None
    assert batch.errors is not None and [(e.code, e.line) for e in batch.errors.data] == [(code, line)]
    assert server.stats.requests == 0


def test_limits_and_unknown_files_are_refused(client, server):
    bad = client.files.create(file=("bad.jsonl", b'{"custom_id": "a"\n'), purpose="batch")
    batch = client.batches.create(input_file_id=bad.id, endpoint=ENDPOINT, completion_window="24h")
    assert client.batches.retrieve(batch.id).errors.data[0].code == "invalid_json_line"
    server.batches.max_requests = 2
    too_many = client.batches.retrieve(submit(client, [request_line(str(i)) for i in range(3)]).id)
    assert [e.code for e in too_many.errors.data] == ["too_many_tasks"]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-missing", endpoint=ENDPOINT, completion_window="24h")


def test_a_slow_batch_stays_in_progress_until_its_delay_has_passed(client, server):
    server.slow_batches(1, 0.3)
    slow = submit(client, [request_line("s")])
    quick = submit(client, [request_line("q")])
    assert client.batches.retrieve(slow.id).status == "in_progress"
    assert client.batches.retrieve(quick.id).status == "completed"
    assert server.stats.executed_custom_ids == {"q": 1}
    time.sleep(0.35)
    assert client.batches.retrieve(slow.id).status == "completed"
    assert server.stats.executed_custom_ids == {"q": 1, "s": 1}


def test_batches_are_listed_newest_first_a_page_at_a_time(client, server):
    server.batch_delay = 60.0
    ids = [submit(client, [request_line("a")]).id for _ in range(5)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[:2:-1] and first.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # the client follows `after`
    assert {b.status for b in client.batches.list()} == {"in_progress"}


def test_a_shared_long_prefix_is_reported_cached_in_steps_and_a_short_prompt_never(client, server):
    system = {"role": "system", "content": " ".join(["word"] * 1300)}
    usages = [client.chat.completions.create(model="fake-model", messages=[system, {"role": "user", "content": q}]
                                             ).usage for q in ("first question", "second one here")]
    assert usages[0].prompt_tokens_details.cached_tokens == 0
    assert usages[1].prompt_tokens_details.cached_tokens == 1280  # 1300 rounded down to the 128-token step
    assert usages[1].prompt_tokens == 1303
    other_model = client.chat.completions.create(model="other", messages=[system, {"role": "user", "content": "x"}])
    assert other_model.usage.prompt_tokens_details.cached_tokens == 0
    short = [{"role": "user", "content": "a short prompt"}]
    for _ in range(2):
        assert client.chat.completions.create(model="fake-model", messages=short).usage.prompt_tokens_details \
            .cached_tokens == 0
    batch = client.batches.retrieve(submit(client, [
        {**request_line("b1"), "body": {"model": "fake-model", "messages": [system]}}]).id)
    assert batch.usage.input_tokens_details.cached_tokens == 1280
    assert server.stats.cached_tokens == 2560
    with urllib.request.urlopen(f"{server.base_url}/_stats") as answer:
        stats = json.loads(answer.read())
    assert stats["cached_tokens"] == 2560 and stats["batch_lines"] == 1 and stats["executed_custom_ids"] == {"b1": 1}
    assert stats["batches_created"] == stats["files_uploaded"] == 1


def test_prompt_caching_can_be_turned_off():
    with FakeOpenAIServer(prompt_cache=False) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        messages = [{"role": "user", "content": " ".join(["word"] * 2000)}]
        for _ in range(2):
            usage = client.chat.completions.create(model="m", messages=messages).usage
            assert usage.prompt_tokens == 2000 and usage.prompt_tokens_details.cached_tokens == 0
