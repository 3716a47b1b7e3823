"""The detection policy (``policies/detection.yaml``), validated once at start.

Durations are written ``90s``, ``30m``, ``1h``, ``24h`` or ``7d``. Every detector has its own
``severity`` and ``action``; volume rules carry theirs per window. A bad file raises
``ConfigError`` naming the key, the value and what is expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError
from gateway.settings import describe_validation_error

Severity = Literal["low", "medium", "high", "critical"]
Action = Literal["alert", "throttle", "block", "suspend"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: object) -> int:
    """``"1h"`` → 3600; plain integers are seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError("a duration such as 90s, 30m, 1h, 24h or 7d")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[int, BeforeValidator(parse_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorBase(_Frozen):
    enabled: bool = True
    severity: Severity = "medium"
    action: Action = "alert"


class VolumeRule(_Frozen):
    """At most ``max`` records of ``entity`` per sliding ``window`` for people with ``role``."""

    role: str = Field(description='a role name, or "*" for any role without its own rule')
    entity: str = Field(description='an entity name, or "*"')
    window: Duration
    max: int = Field(gt=0)
    severity: Severity = "high"
    action: Action = "throttle"

    @field_validator("window")
    @classmethod
    def _whole_minutes(cls, v: int) -> int:
        if v % 60 or v > 7 * 86400:
            raise ValueError("a volume window must be whole minutes and at most 7d")
        return v


class VolumeConfig(_Frozen):
    enabled: bool = True
    rules: list[VolumeRule]

    @field_validator("rules")
    @classmethod
    def _has_default(cls, v: list[VolumeRule]) -> list[VolumeRule]:
        # Deny by default: a role or entity nobody thought of must still have a limit.
        if not any(r.role == "*" and r.entity == "*" for r in v):
            raise ValueError('add a default rule with role "*" and entity "*"')
        return v


class BaselineConfig(DetectorBase):
    z: float = Field(default=8.0, gt=0, description="robust z-score (median/MAD of daily totals)")
    floor: int = Field(default=1000, ge=1, description="never alert below this many records a day")
    learning_days: int = Field(default=10, ge=1, le=30, description="active days needed first")
    drip_days: int = Field(
        default=5, ge=2, le=10, description="slow drip: active days judged together, today too"
    )
    drip_z: float = Field(default=4.0, gt=0, description="z-score of those days' sum")
    drip_cap: float = Field(
        default=4.0, gt=0, description="one day adds at most this many σ to the drip's sum"
    )


class PeerConfig(DetectorBase):
    z: float = Field(default=10.0, gt=0)
    floor: int = Field(default=1500, ge=1)
    min_peers: int = Field(default=5, ge=2)
    refresh: Duration = 600


class CrawlConfig(DetectorBase):
    severity: Severity = "high"
    action: Action = "throttle"
    window: Duration = 3600
    pages: int = Field(default=15, ge=2, description="deep pages (see depth) in one window")
    depth: int = Field(default=5, ge=1, le=1000, description="page index from which a page is deep")
    records: int = Field(default=2000, ge=1, description="records on paginated calls in one window")
    params: list[str] = Field(
        default_factory=lambda: ["page", "offset", "skip", "start", "from", "$skip", "cursor"]
    )
    size_params: list[str] = Field(
        default_factory=lambda: ["page_size", "limit", "size", "per_page", "$top", "top"]
    )
    default_page_size: int = Field(default=50, ge=1, description="for offsets sent without a size")
    exempt_roles: list[str] = Field(default_factory=list, description="e.g. sync bots")


class OffHoursConfig(DetectorBase):
    window: Duration = 3600
    records: int = Field(default=500, ge=1, description="records read off hours in one window")
    session_break: Duration = Field(
        default=3600, description="a pause this long ends a session; overtime has none"
    )
    usual_days: int = Field(default=4, ge=1, description="days seen at an hour that make it usual")
    usual_margin: int = Field(
        default=1, ge=0, le=3, description="hours next to a usual hour that count as usual"
    )
    exempt_roles: list[str] = Field(default_factory=list)


class DepartingConfig(DetectorBase):
    severity: Severity = "high"
    bulk_records: int = Field(default=100, ge=1, description="one response this big is a bulk read")
    factor: float = Field(default=0.2, gt=0, le=1, description="multiplies every other threshold")


class FirstAccessConfig(DetectorBase):
    severity: Severity = "low"
    records: int = Field(default=100, ge=1)
    learning_days: int = Field(default=10, ge=1, le=30)


class DetectorsConfig(_Frozen):
    volume: VolumeConfig
    baseline: BaselineConfig = BaselineConfig()
    peer: PeerConfig = PeerConfig()
    crawl: CrawlConfig = CrawlConfig()
    off_hours: OffHoursConfig = OffHoursConfig()
    departing: DepartingConfig = DepartingConfig()
    first_access: FirstAccessConfig = FirstAccessConfig()


class WorkingHours(_Frozen):
    start: int = Field(default=8, ge=0, le=23, description="first working hour (local)")
    end: int = Field(default=20, ge=1, le=24, description="hour at which work ends (local)")
    weekdays: list[str] = Field(default_factory=lambda: list(_WEEKDAYS[:5]))

    @field_validator("weekdays")
    @classmethod
    def _known_days(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in _WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday {bad}; use {', '.join(_WEEKDAYS)}")
        return v

    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(_WEEKDAYS.index(d) for d in self.weekdays)


class FalsePositiveRule(_Frozen):
    """Each false-positive verdict multiplies the person's threshold by ``step``, up to ``max``."""

    step: float = Field(default=1.5, gt=1, le=4)
    max: float = Field(default=4.0, ge=1, le=20)


class CountersConfig(_Frozen):
    backend: Literal["memory", "redis"] = "memory"
    key_prefix: str = "wardgate:detect:"
    timeout_s: float = Field(default=0.25, gt=0, le=5)
    retry_s: float = Field(
        default=5.0, gt=0, le=300, description="how often to retry a failed Redis"
    )


class SmtpConfig(_Frozen):
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    recipients: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None


class NotifyConfig(_Frozen):
    webhook_url: str | None = None
    webhook_secret_env: str = "WARDGATE_ALERT_WEBHOOK_SECRET"  # noqa: S105 - a variable name
    retries: int = Field(default=5, ge=0, le=20)
    backoff_s: float = Field(default=1.0, gt=0, le=60)
    smtp: SmtpConfig | None = None


class DetectionConfig(_Frozen):
    timezone: str = "Asia/Shanghai"
    working_hours: WorkingHours = WorkingHours()
    throttle: Duration = 900
    dedup: Duration = 3600
    false_positive: FalsePositiveRule = FalsePositiveRule()
    counters: CountersConfig = CountersConfig()
    notify: NotifyConfig = NotifyConfig()
    detectors: DetectorsConfig

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Asia/Shanghai") from None
        return v


def load_detection_config(path: str | Path) -> DetectionConfig:
    """Read and validate a detection policy file; raise ``ConfigError`` on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"detection policy {path} not found; pass --detection FILE") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return detection_config_from_dict(raw, source=str(path))


def detection_config_from_dict(raw: object, source: str = "detection") -> DetectionConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {raw!r}")
    try:
        return DetectionConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None
