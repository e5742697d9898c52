"""A dispatcher's slots per destination and per tenant: full means "come back shortly",
never "wait here", so one slow receiver or tenant cannot occupy every slot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from yarl import URL

from acceptd.core.caps import ConcurrencyCaps


def destination_key(url: str, endpoint_id: str | None) -> str:
    """A registered endpoint is its own destination; a callback URL's is its origin."""
    if endpoint_id:
        return endpoint_id
    parsed = URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"


@dataclass
class Slots:
    """A dispatcher's request slots, shared fairly: at most so many in flight to one
    receiver, and at most so many for one tenant, so a tenant with many slow receivers
    cannot hold every slot while another tenant's webhooks wait. A full cap means "come
    back shortly" (the attempt is deferred, uncounted), never "wait here"."""

    per_destination: ConcurrencyCaps
    per_tenant: ConcurrencyCaps
    # Called after every release: deliveries waiting for a slot start (dispatcher/inline.py).
    on_release: Callable[[], None] | None = None

    @classmethod
    def build(cls, per_destination: int, per_tenant: int) -> Slots:
        return cls(ConcurrencyCaps(per_destination), ConcurrencyCaps(per_tenant))

    def try_take(self, tenant: str, url: str, endpoint_id: str | None) -> bool:
        if not self.per_tenant.try_acquire(tenant):
            return False
        if not self.per_destination.try_acquire(destination_key(url, endpoint_id)):
            self.per_tenant.release(tenant)
            return False
        return True

    def give_back(self, tenant: str, url: str, endpoint_id: str | None) -> None:
        self.per_destination.release(destination_key(url, endpoint_id))
        self.per_tenant.release(tenant)
        if self.on_release is not None:
            self.on_release()
