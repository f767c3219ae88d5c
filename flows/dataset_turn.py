"""Deployment runs on one dataset take turns instead of failing on its lock.

The nightly refresh and an on-demand run (two deployments) may write the same dataset: each
deployment run holds a Prefect global concurrency limit of 1 named after the dataset, created on
first use, and waits for it. Runs outside a deployment (the CLI, the library) keep the dataset's
lock file alone, which refuses a second writer at once with a message naming the holder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists

from personasim.flows.outcome import dataset_key

LEASE_S = 60.0  # a crashed run's turn passes to the next after this long (a live run renews it)


def in_deployment() -> bool:
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


@contextmanager
def dataset_turn(root: str) -> Iterator[None]:
    """Hold the dataset's turn for the block, waiting while another deployment run holds it."""
    if not in_deployment():
        yield
        return
    name = dataset_key(root)
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    get_run_logger().info("taking the turn of dataset %s (concurrency limit %s; waits while another run has it)",
                          root, name)
    with concurrency(name, occupy=1, strict=True, lease_duration=LEASE_S):
        yield
