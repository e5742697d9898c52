"""The dispatcher's parts, wired once per process: fan-out, inline sender, attempts,
outcome policy, signing-secrets cache and sweeper. Each part has one job (its module);
this class only builds them, runs the loops and closes them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from dataclasses import dataclass, field

import aiohttp

from acceptd.core.settings import Settings
from acceptd.core.ssrf import AddressPolicy, async_resolver
from acceptd.dispatcher.attempts import BUSY_WAIT_SECONDS, Attempts
from acceptd.dispatcher.caps import Slots
from acceptd.dispatcher.egress import WebhookProxy, webhook_session
from acceptd.dispatcher.fanout import FanOut
from acceptd.dispatcher.inline import InlineDispatch
from acceptd.dispatcher.outcome import OutcomePolicy
from acceptd.dispatcher.recovery import RecoveryRunner
from acceptd.dispatcher.signing_secrets import SigningSecrets
from acceptd.dispatcher.sweeper import DeliverySweeper
from acceptd.store.batches import BatchStore
from acceptd.store.bootstrap import secret_box
from acceptd.store.connection import open_shards
from acceptd.store.deliveries import DeliveryStore
from acceptd.store.endpoints import EndpointStore
from acceptd.store.jobs import JobStore
from acceptd.store.ordering import OrderQueues
from acceptd.store.recoveries import RecoveryStore
from acceptd.store.scripts import Scripts
from acceptd.store.shards import Shards
from acceptd.store.tenants import TenantStore
from acceptd.store.throttle import EndpointThrottle

LOOP_STOP_SECONDS = 5.0


def deliver_timeout(settings: Settings) -> float:
    """arq's timeout of one attempt: above the HTTP timeout and the wait for a slot (its
    only slow steps), so arq never runs one attempt twice at once."""
    return settings.webhook_timeout_seconds + BUSY_WAIT_SECONDS + 10


@dataclass
class DispatcherRuntime:
    settings: Settings
    shards: Shards
    session: aiohttp.ClientSession
    attempts: Attempts
    inline: InlineDispatch
    fanouts: list[FanOut]
    sweeper: DeliverySweeper
    recovery: RecoveryRunner
    stopping: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    proxy: WebhookProxy | None = None

    @classmethod
    async def open(cls, settings: Settings) -> DispatcherRuntime:
        shards = await open_shards(settings)
        redis = shards.control
        scripts = Scripts(shards)
        box = secret_box(settings)
        endpoints = EndpointStore(shards, scripts, box)
        deliveries = DeliveryStore(shards, scripts, settings.job_retention_seconds, box)
        jobs = JobStore(shards, scripts, settings.job_retention_seconds, box)
        policy = AddressPolicy.build(
            settings.allow_private_callbacks, settings.callback_allow_cidrs
        )
        proxy = WebhookProxy.from_settings(settings, async_resolver())
        session = webhook_session(settings, policy, proxied=proxy is not None)
        order = OrderQueues(shards, scripts, deliveries)
        attempts = Attempts(
            settings,
            session,
            policy,
            proxy,
            Slots.build(
                settings.webhook_concurrency_per_endpoint,
                settings.webhook_concurrency_per_tenant,
                # Waiting holds the queue's run slots (max_jobs: webhook_max_concurrency):
                # a quarter at most, whatever the tenants.
                max_waiting=settings.webhook_max_concurrency // 4,
            ),
            deliveries,
            endpoints,
            SigningSecrets(TenantStore(redis, box), endpoints),
            OutcomePolicy(settings, deliveries, endpoints, shards),
            EndpointThrottle(scripts),
            order,
        )
        inline = InlineDispatch(attempts, deliveries, settings.webhook_max_concurrency)
        stopping = asyncio.Event()
        consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        runtime = cls(
            settings=settings,
            shards=shards,
            session=session,
            proxy=proxy,
            attempts=attempts,
            inline=inline,
            # One per shard's events stream, each with its own blocking read.
            fanouts=[
                FanOut(
                    shards,
                    jobs,
                    BatchStore(shards, scripts, jobs),
                    endpoints,
                    deliveries,
                    consumer,
                    inline=inline,
                    stopping=stopping,
                    order=order,
                    shard=shard,
                )
                for shard in range(shards.count)
            ],
            sweeper=DeliverySweeper(deliveries, stopping, order, inline, endpoints),
            recovery=RecoveryRunner(
                RecoveryStore(shards, deliveries, settings.job_retention_seconds),
                deliveries,
                endpoints,
                shards,
            ),
            stopping=stopping,
        )
        loop = asyncio.get_running_loop()
        runtime.tasks = [
            *(
                loop.create_task(fanout.run(), name=f"fan-out-{fanout.shard}")
                for fanout in runtime.fanouts
            ),
            loop.create_task(runtime.sweeper.run(), name="sweeper"),
        ]
        return runtime

    async def sweep(self) -> int:
        return await self.sweeper.sweep()

    async def close(self) -> None:
        await self.inline.drain(self.settings.shutdown_grace_seconds)
        # The fan-out and the sweeper stop between Redis calls (a blocking read ends within
        # its block time); only what is still running after that is cancelled.
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=LOOP_STOP_SECONDS)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()
        if self.proxy is not None:
            await self.proxy.resolver.close()
        await self.shards.aclose()
