"""The JSON Schema of the services file, for editors (`taoplan schema`)."""

from __future__ import annotations

from typing import Any

from taoplan import platforms
from taoplan.config import SERVICE_NAME_MAX, Pricing, ServiceSpec
from taoplan.references import load_references


def services_schema() -> dict[str, Any]:
    refs = load_references()
    service = ServiceSpec.model_json_schema()
    service["properties"]["network_arch"]["enum"] = list(refs.service.valid_archs)
    service["properties"]["platform"]["enum"] = list(platforms.KNOWN)
    defaults = {**service, "required": [], "title": "Defaults"}
    platform_props = {
        name: platforms.platform_class(name).Config.model_json_schema() for name in platforms.IMPLEMENTED
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "taoplan services file",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "services"],
        "properties": {
            "version": {"const": 1},
            "project": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
            "defaults": defaults,
            "platforms": {"type": "object", "additionalProperties": False, "properties": platform_props},
            "services": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {
                    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                    "maxLength": SERVICE_NAME_MAX,
                },
                "additionalProperties": service,
            },
            "pricing": {"type": "object", "additionalProperties": Pricing.model_json_schema()},
        },
    }
