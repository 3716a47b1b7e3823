"""The built components of one Wardgate process, started and stopped in order.

Everything is built once from ``Settings`` (compile once, run branch-free). The admin app
finds them on ``app.state.services``; the proxy app holds them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field

import httpx
import structlog
from sqlalchemy import Engine

from audit.alerts import AlertStore
from audit.counters import Counters, MemoryCounters, RedisCounters
from audit.detect import ExportGuard
from audit.detectors.config import DetectionConfig, load_detection_config
from audit.holds import SharedHolds
from audit.notify import notifier_from_config
from audit.schema import ensure_schema
from audit.store import make_engine
from audit.writer import AuditWriter
from gateway.apikeys import ApiKeyStore
from gateway.catalog import FieldCatalog
from gateway.directory.status import PeopleStatus, RoleStore
from gateway.errors import ConfigError
from gateway.health import Health
from gateway.identity import Identifier
from gateway.masking import Masker
from gateway.policy import Policy
from gateway.resources import ResourceMap
from gateway.settings import Settings

log = structlog.get_logger(__name__)

GRANTS_REFRESH_S = 0.25


@dataclass
class Services:
    settings: Settings
    engine: Engine
    http: httpx.AsyncClient
    catalog: FieldCatalog
    resources: ResourceMap
    masker: Masker
    roles: RoleStore
    people: PeopleStatus
    api_keys: ApiKeyStore
    policy: Policy
    identity: Identifier
    audit: AuditWriter | DisabledAudit
    detection: ExportGuard
    health: Health
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.audit.start()
        await self.api_keys.start()
        await self.people.start()
        self.policy.refresh_grants()
        await self.identity.start()
        await self.detection.load()
        self._tasks.append(asyncio.create_task(self._follow_grants()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.detection.aclose()
        await self.identity.close()
        await self.people.close()
        await self.api_keys.close()
        await self.audit.close()  # last: drains every event of the requests above
        await self.http.aclose()
        self.engine.dispose()

    async def _follow_grants(self) -> None:
        """Recompile the role view when the role store moves (directory sync, HR, SCIM)."""
        while True:
            await asyncio.sleep(GRANTS_REFRESH_S)
            try:
                if self.roles.version != self.policy.grants_version:
                    await asyncio.to_thread(self.policy.refresh_grants)
            except Exception:  # keep the last good roles; the log says why
                log.exception("role refresh failed; keeping the last known roles")


class DisabledAudit:
    """``audit.enabled: false`` — for benchmarks only: nothing is recorded, loudly."""

    queue_depth = 0
    accepting = True

    async def start(self) -> None:
        log.warning("AUDIT IS DISABLED: no request is recorded (audit.enabled is false)")

    def reserve(self) -> bool:
        return False  # no queue, no slot to hold

    def release(self) -> None:
        return None

    async def record(self, event: object, *, reserved: bool = False) -> None:
        return None

    async def close(self) -> None:
        return None


def field_hash_key(settings: Settings) -> bytes:
    """The deployment's key for ``hash`` masking; random per process if not configured."""
    key = os.environ.get(settings.field_hash_key_env)
    if key:
        if len(key.encode()) < 16:
            raise ConfigError(
                f"{settings.field_hash_key_env} must hold at least 16 bytes of secret; "
                "generate one with: openssl rand -hex 32"
            )
        return key.encode()
    log.warning(
        "no field hash key configured; hashed fields will not join across restarts",
        env=settings.field_hash_key_env,
    )
    return os.urandom(32)


def _counters(config: DetectionConfig, settings: Settings) -> Counters:
    if config.counters.backend == "memory":
        return MemoryCounters()
    if not settings.redis_url:
        raise ConfigError("detection.yaml asks for redis counters but settings have no redis_url")
    return RedisCounters.from_url(
        settings.redis_url,
        key_prefix=config.counters.key_prefix,
        timeout_s=config.counters.timeout_s,
        retry_s=config.counters.retry_s,
    )


def build_export_guard(
    settings: Settings, engine: Engine, people: PeopleStatus, http: httpx.AsyncClient
) -> ExportGuard:
    config = load_detection_config(settings.policy.path("detection"))
    return ExportGuard(
        config,
        _counters(config, settings),
        AlertStore(engine),
        people,
        notifier_from_config(config.notify, http),
        holds=SharedHolds(engine, settings.redis_url),
    )


def build_services(settings: Settings) -> Services:
    ensure_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    catalog = FieldCatalog.load(settings.policy.path("fields"))
    resources = ResourceMap.load(settings.policy.path("resources"))
    roles = RoleStore(engine)
    api_keys = ApiKeyStore(engine)
    people = PeopleStatus(
        engine,
        settings.redis_url,
        roles=roles,
        on_revoke=lambda subject: asyncio.to_thread(api_keys.disable_for_subject, subject),
    )
    policy = Policy(settings, catalog, roles)
    audit = AuditWriter(settings.audit, engine) if settings.audit.enabled else DisabledAudit()
    return Services(
        settings=settings,
        engine=engine,
        http=http,
        catalog=catalog,
        resources=resources,
        masker=Masker(field_hash_key(settings)),
        roles=roles,
        people=people,
        api_keys=api_keys,
        policy=policy,
        identity=Identifier(settings.issuers, api_keys, people, http),
        audit=audit,
        detection=build_export_guard(settings, engine, people, http),
        health=Health(engine, lambda: policy.version, lambda: audit.accepting),
    )
