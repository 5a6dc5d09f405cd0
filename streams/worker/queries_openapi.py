"""The OpenAPI 3.1 document of the worker's HTTP queries (``schemas/openapi.yaml``).

Written here as data and rendered by ``orderwatch schemas`` (:mod:`streams.tools.schemas`), so
``orderwatch schemas --check`` finds it stale like the other schemas; the answers it describes
are :mod:`streams.core.views`' and :mod:`streams.worker.queries`', and tests validate real
answers against it (``tests/unit/worker/test_queries_routing.py``,
``tests/integration/test_queries.py``).
"""

from __future__ import annotations

from typing import Any

from streams import __version__

__all__ = ["OPENAPI_FILE", "openapi_document"]

OPENAPI_FILE = "openapi.yaml"

_TIME = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC, with a Z."}
_STATUS = {"type": "string", "enum": ["open", "at_risk", "breached", "closed"]}
_SEVERITY = {"type": "string", "enum": ["info", "warning", "critical"]}
_DEADLINE = {
    "type": "string",
    "enum": ["fulfillment", "confirmed_fulfillment", "delivery", "complaint_response"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema; consumers must accept properties added later (the contract only
    grows), so unknown properties are allowed."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _schemas() -> dict[str, Any]:
    return {
        "Error": _object(
            {
                "error": {
                    "type": "string",
                    "description": "What went wrong, and what to do about it, in a sentence.",
                }
            }
        ),
        "TimelineEntry": _object(
            {
                "at": _TIME,
                "event": {"type": "string", "description": "The input's type."},
                "detail": {"type": "string"},
            }
        ),
        "Deadline": _object(
            {
                "deadline": _DEADLINE,
                "due_at": _TIME,
                "state": {
                    "type": "string",
                    "enum": ["pending", "met", "breached", "resolved"],
                    "description": "resolved: breached, then met late or the order ended "
                    "(delivered, refunded, cancelled).",
                },
            },
            {"complaint_id": {"type": "string"}, "met_at": _TIME},
        ),
        "Breach": _object(
            {
                "type": {"const": "deadline.breached"},
                "id": {"type": "string", "description": "The breach_id of the output."},
                "at": {**_TIME, "description": "When the deadline was due."},
                "deadline": _DEADLINE,
            },
            {"complaint_id": {"type": "string"}},
        ),
        "Resolution": _object(
            {
                "type": {"const": "deadline.resolved"},
                "id": {"type": "string", "description": "The resolution_id of the output."},
                "at": {**_TIME, "description": "When the event that resolved the breach occurred."},
                "deadline": _DEADLINE,
                "resolution": {
                    "type": "string",
                    "enum": ["met_late", "delivered", "refunded", "cancelled"],
                },
            },
            {},
        ),
        "Recommendation": _object(
            {
                "type": {"const": "recommendation.issued"},
                "id": {"type": "string", "description": "The recommendation_id of the output."},
                "at": {**_TIME, "description": "When it came due (issued then or just after)."},
                "reason": {"type": "string"},
                "severity": _SEVERITY,
            },
            {"respond_by": _TIME},
        ),
        "Order": _object(
            {
                "order_id": {"type": "string"},
                "merchant_id": {"type": "string"},
                "status": _STATUS,
                "placed_at": {"oneOf": [_TIME, {"type": "null"}]},
                "released_at": {"oneOf": [_TIME, {"type": "null"}]},
                "timeline": {"type": "array", "items": _ref("TimelineEntry")},
                "deadlines": {"type": "array", "items": _ref("Deadline")},
                "decisions": {
                    "type": "array",
                    "items": {
                        "oneOf": [_ref("Breach"), _ref("Resolution"), _ref("Recommendation")]
                    },
                },
            },
            {"respond_by": _TIME, "next_due": _TIME},
        ),
        "HealthMeasure": _object(
            {
                "measure": {"type": "string"},
                "metric": {"type": "string"},
                "rate": {"oneOf": [{"type": "number"}, {"type": "null"}]},
                "count": {"type": "integer", "minimum": 0},
                "of": {"type": "integer", "minimum": 0},
                "comparison": {"type": "string"},
                "threshold": {"type": "number"},
                "severity": _SEVERITY,
                "at_risk": {"type": "boolean"},
            }
        ),
        "OpenRecommendation": _object(
            {
                "recommendation_id": {"type": "string"},
                "reason": {"type": "string"},
                "measure": {"type": "string"},
                "severity": _SEVERITY,
                "crossing": {"type": "integer", "minimum": 1},
            }
        ),
        "Merchant": _object(
            {
                "merchant_id": {"type": "string"},
                "as_of": _TIME,
                "window_days": {"type": "number"},
                "min_orders": {"type": "integer"},
                "orders_in_window": {"type": "integer", "minimum": 0},
                "health": {"type": "array", "items": _ref("HealthMeasure")},
                "open_recommendations": {"type": "array", "items": _ref("OpenRecommendation")},
            }
        ),
        "OrderRow": _object(
            {"order_id": {"type": "string"}, "status": _STATUS},
            {"respond_by": _TIME, "next_due": _TIME},
        ),
        "OrderList": _object(
            {"orders": {"type": "array", "items": _ref("OrderRow")}},
            {
                "next_cursor": {
                    "type": "string",
                    "description": "Pass as cursor for the next page; absent on the last.",
                }
            },
        ),
    }


def _error(description: str, *, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if retry:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before asking again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def _get(summary: str, schema: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "security": [{}, {"bearer": []}],
            "responses": {
                "200": {
                    "description": "The answer, from the state of the key's owner.",
                    "content": {"application/json": {"schema": _ref(schema)}},
                },
                "400": _error("A query parameter is wrong (the sentence says which)."),
                "401": _error(
                    "ORDERWATCH_WEB_TOKEN is set and the bearer token is missing or wrong."
                ),
                "404": _error("No such id is known."),
                "503": _error(
                    "The owning partition is being assigned or restored, or its worker does "
                    "not answer: ask again after Retry-After.",
                    retry=True,
                ),
            },
        }
    }


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    """The document, as data."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orderwatch state queries",
            "version": __version__,
            "description": "Read-only queries every worker answers (docs/contract.md, HTTP). "
            "A key is answered by the worker owning its partition; any other worker forwards "
            "the request there. Times are RFC 3339 UTC.",
        },
        "paths": {
            "/orders/{order_id}": _get(
                "An order: status, timeline, deadlines and the decisions it got.",
                "Order",
                [_path_id("order_id")],
            ),
            "/merchants/{merchant_id}": _get(
                "A store's health against the policy's thresholds.",
                "Merchant",
                [_path_id("merchant_id")],
            ),
            "/merchants/{merchant_id}/orders": _get(
                "A store's orders, sorted by respond-by, then next due deadline, then id.",
                "OrderList",
                [
                    _path_id("merchant_id"),
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "Only orders of this status (default: every status "
                        "but closed).",
                        "schema": _STATUS,
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The next_cursor of the previous page.",
                        "schema": {"type": "string"},
                    },
                ],
            ),
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Needed only when the worker has ORDERWATCH_WEB_TOKEN set; "
                    "a client that cannot set the header may pass ?access_token= instead.",
                }
            },
        },
    }
