"""``msgworker serve``: one ASGI service for producers in any language.

    app.py      the factory: settings in, a FastAPI app out; each part a router
    health.py   /healthz (alive) and /readyz (Redis answers)
    metrics.py  the service's own /metrics: requests by route and status
    auth.py     Bearer tokens, compared in constant time
    body.py     bounded request bodies, parsed as JSON
    problems.py the error answers (401, 404, 413, 422, 503) and their shapes
    schemas.py  the request and answer models the OpenAPI document is generated from
    document.py the OpenAPI document (/openapi.json): FastAPI's, with the schemes and examples
    examples.py an example of each message type and request, for the document
    apidocs/    /docs (Swagger UI) and /redoc, from vendored bundles
    ingest.py   POST /v1/messages, POST /v1/messages/batch, GET /v1/jobs/{id}
    webhooks.py POST /webhooks/gateway: the Gateway's delivery statuses, applied to jobs
    webhook_payload.py  those webhooks' bodies, read strictly and boundedly

A part with a secret (ingest: ``INGEST_TOKENS``, webhooks: ``WEBHOOK_SECRET``) is mounted only
when its secret is set, and answers 404 otherwise. The service starts with Redis down;
``/readyz`` says when it answers.
"""
