"""The OpenAPI 3 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

Kept next to the routes and checked by a test that every ``/api/v1`` route is documented.
"""

from __future__ import annotations

from typing import Any

_ERROR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Ambassador Connector API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"sessionToken": []}],
        "components": {
            "securitySchemes": {
                "sessionToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Shopify App Bridge session token",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Shop": {
                    "type": "object",
                    "properties": {
                        "domain": {"type": "string"},
                        "name": {"type": "string", "nullable": True},
                        "currency": {"type": "string", "nullable": True},
                        "status": {"type": "string", "enum": ["installed", "uninstalled"]},
                        "installed_at": {"type": "string", "format": "date-time", "nullable": True},
                        "webhooks_registered_at": {
                            "type": "string",
                            "format": "date-time",
                            "nullable": True,
                        },
                        "webhooks": {"type": "object"},
                    },
                },
                "PrivacyRequest": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "topic": {"type": "string"},
                        "customer_id": {"type": "integer", "nullable": True},
                        "received_at": {"type": "string", "format": "date-time"},
                        "completed_at": {"type": "string", "format": "date-time", "nullable": True},
                        "summary": {"type": "object"},
                    },
                },
            },
        },
        "paths": {
            "/shop": {
                "get": {
                    "summary": "The installation and its webhook intake health",
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Shop"}
                                }
                            },
                        },
                        "401": _ERROR,
                        "403": _ERROR,
                    },
                }
            },
            "/privacy/requests": {
                "get": {
                    "summary": "Privacy requests received for this shop (exports included)",
                    "responses": {"200": {"description": "OK"}, "401": _ERROR, "403": _ERROR},
                }
            },
            "/privacy/requests/{request_id}": {
                "get": {
                    "summary": "One privacy request",
                    "parameters": [
                        {
                            "name": "request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/PrivacyRequest"}
                                }
                            },
                        },
                        "401": _ERROR,
                        "403": _ERROR,
                        "404": _ERROR,
                    },
                }
            },
        },
    }
