"""In-flight requests per destination: full means "come back shortly", never "wait here",
so one slow receiver cannot occupy every slot of a dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field

from yarl import URL


@dataclass
class ConcurrencyCaps:
    limit: int
    in_flight: dict[str, int] = field(default_factory=dict)

    def try_acquire(self, key: str) -> bool:
        if self.in_flight.get(key, 0) >= self.limit:
            return False
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return True

    def release(self, key: str) -> None:
        left = self.in_flight.get(key, 1) - 1
        if left:
            self.in_flight[key] = left
        else:
            self.in_flight.pop(key, None)


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
