"""The JSON Schema of the services file, for editors (`taoplan schema`)."""

from __future__ import annotations

from typing import Any

from taoplan.spec import platform_settings
from taoplan.spec.config import SERVICE_NAME_MAX, Pricing, ServiceSpec
from taoplan.spec.gateway_settings import GatewaySettings
from taoplan.spec.references import load_references


def services_schema() -> dict[str, Any]:
    refs = load_references()
    service = ServiceSpec.model_json_schema()
    service["properties"]["network_arch"]["enum"] = list(refs.service.valid_archs)
    service["properties"]["platform"]["enum"] = list(platform_settings.KNOWN)
    defaults = {**service, "required": [], "title": "Defaults"}
    platform_props = {
        name: platform_settings.CATALOG[name].model_json_schema() for name in platform_settings.CATALOG
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
            "gateway": GatewaySettings.model_json_schema(),
            "secrets_file": {
                "type": "string",
                "minLength": 1,
                "description": "a credentials file (NAME=value lines, mode 0600) apply takes secrets from; "
                "the environment wins",
            },
        },
    }
