"""Start-up steps every role shares: the master key, and the bootstrap tenant."""

from __future__ import annotations

import logging

from acceptd.core.secretbox import SecretBox
from acceptd.core.settings import Settings
from acceptd.store.apikeys import Scope
from acceptd.store.tenants import TenantStore

log = logging.getLogger(__name__)

BOOTSTRAP_TENANT = "default"


class MissingMasterKeyError(RuntimeError):
    pass


def secret_box(settings: Settings) -> SecretBox:
    if settings.master_key is None:
        raise MissingMasterKeyError(
            "ACCEPTD_MASTER_KEY is not set: it encrypts webhook secrets at rest. "
            "Generate one with `acceptd keygen` and give every role the same value."
        )
    return SecretBox(settings.master_key.get_secret_value())


async def bootstrap_tenant(settings: Settings, tenants: TenantStore) -> None:
    key, secret = settings.bootstrap_api_key, settings.bootstrap_secret
    if key is None and secret is None:
        return
    if key is None or secret is None:
        raise ValueError(
            "set both ACCEPTD_BOOTSTRAP_API_KEY and ACCEPTD_BOOTSTRAP_SECRET, or neither"
        )
    scope: Scope = "operator" if settings.bootstrap_operator else "admin"
    await tenants.ensure(BOOTSTRAP_TENANT, key.get_secret_value(), secret.get_secret_value(), scope)
    log.info("tenant %r bootstrapped", BOOTSTRAP_TENANT)
