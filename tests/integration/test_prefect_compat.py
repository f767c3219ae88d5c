"""Each Prefect workaround in personasim.tasks.prefect_compat, checked against Prefect as installed.

If one of these fails after a Prefect upgrade, the workaround it guards may be obsolete (or broken).
"""

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from personasim.tasks.prefect_compat import Sealed, forget_result

pytestmark = pytest.mark.usefixtures("prefect_harness")


class Payload:
    """A result object we can find by identity."""


@task(cache_policy=NO_CACHE, persist_result=False)
def make_payload() -> Payload:
    return Payload()


@task(cache_policy=NO_CACHE, persist_result=False)
def describe(items):
    return [type(item).__name__ for item in (items.value if isinstance(items, Sealed) else items)]


def test_prefect_keeps_every_task_result_for_the_run_and_forget_result_lets_it_go():
    @flow
    def keep() -> tuple[bool, bool]:
        future = make_payload.submit()
        payload = future.result()
        kept = id(payload) in FlowRunContext.get().run_results
        forget_result(future)
        return kept, id(payload) in FlowRunContext.get().run_results

    assert keep() == (True, False)


def test_prefect_walks_plain_inputs_for_futures_but_passes_a_sealed_value_whole():
    @flow
    def walk() -> tuple[list[str], list[str]]:
        future = make_payload.submit()
        future.wait()
        walked = describe([future])  # Prefect found the future in the list and resolved it
        sealed = describe(Sealed([future]))  # one opaque value: nothing inside was visited
        return walked, sealed

    walked, sealed = walk()
    assert walked == ["Payload"]
    assert sealed == ["PrefectConcurrentFuture"]


def test_the_embedded_api_server_is_one_per_process():
    from prefect.server.api.server import SubprocessASGIServer

    assert SubprocessASGIServer() is SubprocessASGIServer()  # api_for_workers relies on getting the running one


@task(cache_policy=NO_CACHE, persist_result=False)
def sleep_then(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_prefect_wait_with_a_timeout_arms_an_alarm_and_completions_does_not(monkeypatch):
    import signal

    from prefect.futures import wait

    from personasim.tasks.prefect_compat import Completions

    timers = []
    real = signal.setitimer
    monkeypatch.setattr(signal, "setitimer", lambda *args: timers.append(args) or real(*args))
    # as in a flow run's process: no SIGALRM handler yet (pytest-timeout installs one, and Prefect
    # then falls back to a watcher thread)
    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_DFL)

    @flow
    def poll() -> tuple[int, int, list[float]]:
        wait([sleep_then.submit(0.2)], timeout=0.05)
        by_wait = len(timers)
        batches = Completions([sleep_then.submit(s) for s in (0.3, 0.0, 0.1)])
        order: list[float] = []
        while batches.pending:
            order += [f.result() for f in batches.finished(timeout=0.05)]
        return by_wait, len(timers) - by_wait, order

    by_wait, by_completions, order = poll()
    assert by_wait > 0  # Prefect's wait armed SIGALRM timers on the main thread: the workaround is needed
    assert by_completions == 0 and order == [0.0, 0.1, 0.3]  # Completions: no timer, in finishing order


def test_a_command_line_flow_sends_no_heartbeats_unless_the_user_asked_for_them():
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from personasim.tasks.prefect_compat import command_line_flow

    with command_line_flow("http://127.0.0.1:9/api"):  # the command's own API: its URL, no heartbeat thread
        assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api" and PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
    with command_line_flow(None):  # the local server: no heartbeats either
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}), command_line_flow(None):
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 60  # set by the user (environment or profile): kept
