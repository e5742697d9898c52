"""What a per-tenant cap that is not a job quota says when it is reached."""

from __future__ import annotations


class CapReachedError(Exception):
    """The tenant holds its cap of these already; nothing was written (each cap is checked
    in the Lua script that writes, so racing creates cannot pass it)."""

    def __init__(self, what: str, cap: int) -> None:
        super().__init__(f"at most {cap} {what} at once; remove one first")
        self.cap = cap
