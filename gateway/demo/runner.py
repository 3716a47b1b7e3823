"""``wardgate demo``: the sample CRM and ERP, a demo IdP and Wardgate in front, no setup.

State lives in ``.wardgate/``: the SQLite database ``demo.db``, the audit spool, and
``demo-tokens.json`` with a token or API key per demo person plus the HR webhook secret and
the SCIM token. Secrets are generated on the first run and kept, so curl lines keep working
across restarts; tokens are re-issued on every start (the demo IdP's key is new each time).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import Any

import structlog

from gateway.apikeys import ApiKeyStore
from gateway.app import serve
from gateway.demo.upstreams import DemoUpstreams, start_demo_upstreams
from gateway.directory.file import FileSource
from gateway.directory.sync import SyncRunner
from gateway.services import Services
from gateway.settings import Settings, settings_from_dict

log = structlog.get_logger(__name__)

AUDIENCE = "wardgate"
TOKEN_TTL_S = 8 * 3600
PEOPLE = {"sales": "sales01", "finance": "finance01", "officer": "officer01", "leaver": "leaver01"}
SECRET_ENV = {
    "hr_webhook_secret": "WARDGATE_HR_SECRET",
    "scim_token": "WARDGATE_SCIM_TOKEN",
    "field_hash_key": "WARDGATE_FIELD_HASH_KEY",
}


def demo_settings(state: Path, ups: DemoUpstreams, proxy_port: int, admin_port: int) -> Settings:
    return settings_from_dict(
        {
            "listen": {
                "proxy_host": "127.0.0.1",
                "proxy_port": proxy_port,
                "admin_host": "127.0.0.1",
                "admin_port": admin_port,
            },
            "upstreams": {
                "crm": {"base_url": ups.crm_url, "prefix": "/crm", "kind": "rest"},
                "erp": {"base_url": ups.erp_url, "prefix": "/erp", "kind": "soap"},
            },
            "issuers": [
                {
                    "issuer": ups.idp_url,
                    "jwks_url": f"{ups.idp_url}/jwks.json",
                    "audience": AUDIENCE,
                    "algorithms": ["RS256"],
                }
            ],
            "database_url": f"sqlite:///{state}/demo.db",
            "audit": {"spool_dir": str(state / "spool"), "instance_id": "demo"},
            "directory": {"source": "file", "file": "policies/directory.yaml"},
            "log": {"format": "console", "level": "info"},
        },
        source="demo settings",
    )


def _secrets(state: Path) -> dict[str, str]:
    """Generated once, kept in demo-tokens.json, exported for the gateway to read."""
    path = state / "demo-tokens.json"
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    values = {name: old.get(name) or secrets.token_urlsafe(32) for name in SECRET_ENV}
    for name, env in SECRET_ENV.items():
        os.environ[env] = values[name]
    return values


async def _sync_loop(settings: Settings, services: Services) -> None:
    source = FileSource(settings.directory.file or "", settings.directory)
    runner = SyncRunner(settings.directory, services.engine, services.people, source)
    await runner.run_forever()


async def _first_sync(settings: Settings, services: Services) -> None:
    source = FileSource(settings.directory.file or "", settings.directory)
    await SyncRunner(settings.directory, services.engine, services.people, source).run_once()


def _sync_bot_key(store: ApiKeyStore) -> str:
    for record in store.list():
        if record.subject == "sync-bot" and not record.revoked:
            store.revoke(record.id, "replaced by a new demo run")
    return store.create("demo CRM→ERP sync job", "sync-bot", ["sync"], created_by="demo")


def _banner(proxy: str, admin: str, state: Path) -> str:
    tokens = state / "demo-tokens.json"
    return f"""
Wardgate demo is running.
  proxy    {proxy}   the CRM under /crm (REST/JSON), the ERP under /erp (SOAP/XML)
  admin    {admin}   officer API, HR webhook, SCIM; console at {admin}/console
  people   sales01 (sales), finance01 (finance), officer01 (officer), leaver01 (has left),
           sync-bot (API key) — tokens, keys and the HR secret are in {tokens}

Try it in another terminal:
  tok() {{ python3 -c "import json,sys; print(json.load(open('{tokens}'))[sys.argv[1]])" "$1"; }}
  curl -s -H "Authorization: Bearer $(tok sales)" '{proxy}/crm/api/customers?page=1&page_size=2'
  curl -s -H "Authorization: Bearer $(tok sales)" {proxy}/crm/admin/users         # 403
  curl -s -H "Authorization: Bearer $(tok leaver)" {proxy}/crm/api/customers      # 401
  curl -s -H "Authorization: Bearer $(tok officer)" '{admin}/api/audit/events?limit=5'

The README's tour has more (SOAP, masking, writes, bulk exports, HR offboarding). Ctrl-C stops.
"""


async def run_demo(state: Path, *, proxy_port: int = 8080, admin_port: int = 8081) -> None:
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True)
    values = await asyncio.to_thread(_secrets, state)
    ups = await start_demo_upstreams()
    try:
        settings = demo_settings(state, ups, proxy_port, admin_port)

        async def prepare(services: Services) -> asyncio.Task[None]:
            await _first_sync(settings, services)
            tokens = {
                k: ups.idp.issue(sub, audience=AUDIENCE, ttl_s=TOKEN_TTL_S)
                for k, sub in PEOPLE.items()
            }
            tokens["sync_bot"] = await asyncio.to_thread(_sync_bot_key, services.api_keys)
            path = state / "demo-tokens.json"
            path.write_text(json.dumps({**tokens, **values}, indent=2, ensure_ascii=False))
            path.chmod(0o600)
            proxy = f"http://127.0.0.1:{proxy_port}"
            admin = f"http://127.0.0.1:{admin_port}"
            print(_banner(proxy, admin, state), flush=True)
            return asyncio.create_task(_sync_loop(settings, services))

        await serve(settings, prepare=prepare)
    finally:
        await ups.close()
