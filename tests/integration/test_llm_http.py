"""The LLM layer through the real `openai` client against a local OpenAI-compatible server."""

import time

import pytest

from personasim.config import load_config
from personasim.errors import LLMCallError
from personasim.llm import operations as op
from personasim.llm.factory import build_clients
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt
from personasim.testing import Fault

MESSAGES = [{"role": "user", "content": "hello"}]


def call(client, operation=op.RESPOND, ledger=None):
    """One call of `operation` through the role's client; its usage goes to `ledger`."""
    return client.complete(Prompt(operation, MESSAGES, offline=lambda rng: "unused"),
                           ledger if ledger is not None else Ledger())


@pytest.fixture
def client(remote_config):
    return build_clients(load_config(remote_config(timeout=0.5, max_retry_wait=1.0))).assistant_pool[0][0]


def test_plain_call_records_usage_and_sends_the_key_and_operation(client, llm_server):
    ledger = Ledger("ix-1")
    reply = call(client, ledger=ledger)
    assert "answer" in reply.text and reply.finish_reason == "stop"
    [request] = llm_server.requests
    assert request.operation == op.RESPOND and request.authorization == "Bearer sk-test-0123456789abcdef"
    [record] = ledger.usage
    assert record is reply.usage and record.interaction_id == "ix-1"
    assert (record.module, record.operation, record.model, record.provider) == ("assistant", "respond",
                                                                               "fake-model", "openai")
    assert record.input_tokens == llm_server.stats.prompt_tokens
    assert record.output_tokens == llm_server.stats.completion_tokens


def test_429_waits_for_retry_after_then_succeeds(client, llm_server):
    llm_server.inject(Fault("status", 429, retry_after=0.4))
    ledger = Ledger()
    call(client, ledger=ledger)
    first, second = llm_server.requests
    assert (first.answered, second.answered) == ("429", "ok")
    assert second.at - first.at >= 0.39
    assert len(ledger.usage) == 1  # the refused call used no tokens


@pytest.mark.parametrize("fault", [Fault("status", 500), Fault("status", 503), Fault("drop"),
                                   Fault("malformed"), Fault("slow", delay=1.5)],
                         ids=["500", "503", "dropped-connection", "malformed-body", "timeout"])
def test_transient_failures_are_retried(client, llm_server, fault):
    llm_server.inject(fault)
    assert call(client).text
    answered = [r.answered for r in llm_server.requests]
    assert answered[-1] == "ok" and len(answered) == 2


@pytest.mark.parametrize("fault", [Fault("status", 400), Fault("status", 401), Fault("status", 403),
                                   Fault("status", 404), Fault("status", 422), Fault("content_filter")],
                         ids=["400", "401", "403", "404", "422", "content-filter"])
def test_permanent_errors_are_not_retried(client, llm_server, fault):
    llm_server.inject(fault)
    ledger = Ledger()
    reason = "content filter" if fault.kind == "content_filter" else f"HTTP {fault.status}"
    with pytest.raises(LLMCallError, match=reason) as err:
        call(client, ledger=ledger)
    assert err.value.permanent
    assert len(llm_server.requests) == 1
    assert ledger.usage == []


def test_retries_give_up_after_max_retries(remote_config, llm_server):
    client = build_clients(load_config(remote_config(max_retries=2, max_retry_wait=0.05))).distractor
    llm_server.inject(*[Fault("status", 500)] * 5)
    started = time.monotonic()
    with pytest.raises(LLMCallError, match=r"distractor\.paraphrase on model 'fake-model'.*HTTP 500") as err:
        call(client, op.PARAPHRASE)
    assert not err.value.permanent  # transient: the pair may be tried again
    assert len(llm_server.requests) == 3 and time.monotonic() - started < 5


def test_error_text_never_contains_the_key(remote_config, llm_server):
    client = build_clients(load_config(remote_config(max_retries=0))).style_transfer
    llm_server.inject(Fault("status", 400))
    llm_server.respond_with(op.REWRITE_QUERY, lambda body: "unused")
    with pytest.raises(LLMCallError) as err:
        call(client, op.REWRITE_QUERY)
    assert "sk-test-0123456789abcdef" not in str(err.value)


def test_request_rate_limit_holds_across_threads_and_roles(remote_config, llm_server):
    import concurrent.futures

    clients = build_clients(load_config(remote_config(requests_per_minute=600)))  # one every 0.1 s
    roles = [clients.style_transfer, clients.user_simulator, clients.distractor, clients.assistant_pool[0][0]]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: call(roles[i % 4]), range(12)))
    times = sorted(r.at for r in llm_server.requests)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 12 and min(gaps) > 0.07 and times[-1] - times[0] >= 1.0


def test_concurrency_limit_holds_across_threads(remote_config, llm_server):
    import concurrent.futures
    import threading

    llm_server.latency = 0.05
    clients = build_clients(load_config(remote_config(max_concurrent_requests=2)))
    active, peak, lock = [0], [0], threading.Lock()
    original = clients.distractor.backend.complete

    def counting(*args):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return original(*args)
        finally:
            with lock:
                active[0] -= 1

    clients.distractor.backend.complete = counting  # the backend is shared by all roles of the endpoint
    roles = [clients.style_transfer, clients.distractor]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: call(roles[i % 2]), range(10)))
    assert peak[0] == 2
