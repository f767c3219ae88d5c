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
