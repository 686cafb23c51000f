"""How the daemon is doing, for load balancers and Prometheus: GET /health
(no token: a probe has none) and /metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from transcriber.api import bodies
from transcriber.api.context import ApiContext
from transcriber.api.metrics import CONTENT_TYPE
from transcriber.api.schemas import HealthResponse


def router(context: ApiContext) -> APIRouter:
    service, health_cache, metrics = context.service, context.health_cache, context.metrics
    routes = APIRouter()

    @routes.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        cached = health_cache.get("health")
        if cached is None:
            healthy, body = service.health()
            cached = bodies.json_response(body, 200 if healthy else 503)
            health_cache.put("health", "health", cached)
        return cached

    @routes.get("/metrics", response_class=PlainTextResponse, dependencies=[context.authorised])
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return routes
