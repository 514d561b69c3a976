"""The small blocks of the services file: a service's ``readiness`` (with its smoke request) and
the file's ``pricing``. Strict and frozen, like every model of the file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Smoke(Strict):
    """readiness.smoke as a mapping: on, with what an arch that requires media needs (cosmos-rl)."""

    image: str | None = None  # an image URL (or a path inside the container) the server can read

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.startswith("data:")):
            raise ValueError("give an image URL (http(s)://...) or an absolute path inside the container")
        return value


class Readiness(Strict):
    timeout: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 1800
    #: after readiness, one small real request (spec/smoke.py); false turns it off
    smoke: StrictBool | Smoke = True


class Pricing(Strict):
    gpu_hour: Annotated[float, Field(ge=0)]
    prompt_token: Annotated[float, Field(ge=0)] | None = None  # per prompt token, when billed so
    completion_token: Annotated[float, Field(ge=0)] | None = None
