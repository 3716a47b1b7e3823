"""Settings of directory sync and offboarding (section ``directory:`` of wardgate.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class DirectorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["file", "ldap", "none"] = "none"
    file: str | None = None
