"""``/docs`` (Swagger UI) and ``/redoc``: the API's document for people, from the package's own
files.

The Swagger UI and Redoc bundles are vendored in ``assets/`` (their versions and licences are in
``assets/README.md``), so the pages work with no internet and fetch nothing from elsewhere; the
Content-Security-Policy says so to the browser. The pages show no data (the document is public
at ``/openapi.json``), so they need no token; "Try it out" sends the token a user types.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

HERE = Path(__file__).parent
ASSETS_PATH = "/docs/assets"
PAGE = (HERE / "page.html").read_text(encoding="utf-8")
# Redoc's bundle adds two <style> elements of its own (an empty one whose rules it inserts
# through the CSSOM, and its scrollbar's fixed CSS): those two, by their hashes, and no other
# inline style. An upgraded bundle that adds another is refused (the browser test says so).
REDOC_STYLES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the empty one
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's CSS
)
HEADERS = {
    # Everything from the service itself: the bundles, the document and "Try it out" requests;
    # images may also be data: URIs (Swagger UI's icons, the pages' empty favicon). Redoc's
    # badge from its makers' CDN is refused, as anything from elsewhere is.
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'self'; style-src 'self' {' '.join(REDOC_STYLES)}; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated each time (an upgrade changes a bundle under the same name); unchanged is 304.
    "Cache-Control": "no-cache",
}


class _Assets:
    """The vendored bundles, with the pages' headers."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=HERE / "assets")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.files(scope, receive, with_headers)


def _page(
    root: str, *, scripts: tuple[str, ...], stylesheets: tuple[str, ...] = ()
) -> Callable[[], Awaitable[HTMLResponse]]:
    """A page that runs these assets on an element ``root``. Paths are relative to the page
    (``/docs``, ``/redoc``), so they work behind a path prefix too."""
    assets = ASSETS_PATH.lstrip("/")
    html = PAGE.format(
        root=root,
        stylesheets="\n".join(f'<link rel="stylesheet" href="{assets}/{s}">' for s in stylesheets),
        scripts="\n".join(f'<script src="{assets}/{s}"></script>' for s in scripts),
    )

    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers=HEADERS)

    return page


def install(app: FastAPI) -> None:
    """The two pages and their assets, outside the document (they are not part of the API)."""
    swagger = _page(
        "swagger-ui",
        scripts=("swagger-ui-bundle.js", "swagger-init.js"),
        stylesheets=("swagger-ui.css",),
    )
    app.get("/docs", include_in_schema=False)(swagger)
    redoc = _page("redoc", scripts=("redoc.standalone.js", "redoc-init.js"))
    app.get("/redoc", include_in_schema=False)(redoc)
    app.mount(ASSETS_PATH, _Assets(), name="docs-assets")
