"""The console's files, read once from the package and served from memory with an ETag, and
the headers every console answer carries (a strict Content-Security-Policy: no inline
script, nothing from another origin, framed only by the origins the operator names)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

STATIC_PACKAGE = "acceptd.console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file under static/, by its path relative to it ("index.html", "views/jobs.js")."""
    root = resources.files(STATIC_PACKAGE).joinpath("static")
    found: dict[str, Asset] = {}
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                pending.append((entry, name + "/"))
                continue
            suffix = "." + entry.name.rpartition(".")[2]
            if suffix not in CONTENT_TYPES:
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found[name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return found


def security_headers(frame_ancestors: list[str]) -> dict[str, str]:
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        # The portal token lives in the fragment, which is never sent; this also keeps the
        # console's paths out of other sites' logs.
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if not frame_ancestors:
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    return headers
