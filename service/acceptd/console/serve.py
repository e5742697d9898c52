"""GET /ui/ and its assets. Registered by the API as public routes: the pages hold no data;
everything they show comes from API calls made with the signed-in credential."""

from __future__ import annotations

from aiohttp import web

from acceptd.console.assets import Asset, load_assets, security_headers

ASSETS = web.AppKey("console_assets", dict[str, Asset])
HEADERS = web.AppKey("console_headers", dict[str, str])


def install(app: web.Application, frame_ancestors: list[str]) -> None:
    app[ASSETS] = load_assets()
    app[HEADERS] = security_headers(frame_ancestors)


async def redirect_to_console(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/ui/")


async def console_page(request: web.Request) -> web.Response:
    return _answer(request, "index.html", cache="no-store")


async def console_asset(request: web.Request) -> web.Response:
    # Revalidated each load (cheap: 304 by ETag), so an upgrade never mixes old and new files.
    return _answer(request, request.match_info["name"], cache="no-cache")


def _answer(request: web.Request, name: str, *, cache: str) -> web.Response:
    asset = request.app[ASSETS].get(name)
    if asset is None:
        raise web.HTTPNotFound()
    headers = {**request.app[HEADERS], "Cache-Control": cache, "ETag": asset.etag}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})
