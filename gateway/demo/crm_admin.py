"""The demo CRM's own admin area: its administrator accounts (per app instance).

    GET    /admin/users              a JSON list of admin users
    POST   /admin/users              create one: {"username", "display_name", "roles", "email"?}
    GET    /admin/users/{username}   one user, 404 if there is none
    DELETE /admin/users/{username}   204, or 404

It exists so that policies have an area only administrators may reach.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from gateway.demo.jsonhttp import json_error, json_response

_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
_REQUIRED = frozenset({"username", "display_name", "roles"})
_ALLOWED = _REQUIRED | {"email"}
_SEED_USERS: tuple[dict[str, Any], ...] = (
    {
        "username": "admin",
        "display_name": "系统管理员",
        "email": "admin@crm.demo.wardgate.dev",
        "roles": ["crm_admin"],
    },
    {
        "username": "zhang.wei",
        "display_name": "张伟",
        "email": "zhang.wei@crm.demo.wardgate.dev",
        "roles": ["crm_admin", "data_steward"],
    },
    {
        "username": "li.na",
        "display_name": "李娜",
        "email": "li.na@crm.demo.wardgate.dev",
        "roles": ["support_lead"],
    },
)


def _checked_user(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    if missing := _REQUIRED - document.keys():
        raise ValueError(f"missing field(s): {', '.join(sorted(missing))}")
    if unknown := document.keys() - _ALLOWED:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    username = document["username"]
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise ValueError("username must be 2-32 of a-z 0-9 _ . - starting with a letter")
    if not isinstance(document["display_name"], str) or not document["display_name"].strip():
        raise ValueError("display_name must be non-empty text")
    roles = document["roles"]
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise ValueError("roles must be a non-empty list of role names")
    if not isinstance(document.get("email", ""), str):
        raise ValueError("email must be text")
    return dict(document)


class _AdminUsers:
    def __init__(self) -> None:
        self.users = {u["username"]: dict(u) for u in _SEED_USERS}

    def _existing(self, request: web.Request) -> str:
        username = request.match_info["username"]
        if username not in self.users:
            raise json_error(404, "not_found", f"no admin user {username!r}")
        return username

    async def list(self, request: web.Request) -> web.Response:
        return json_response(list(self.users.values()))

    async def get(self, request: web.Request) -> web.Response:
        return json_response(self.users[self._existing(request)])

    async def create(self, request: web.Request) -> web.Response:
        try:
            user = _checked_user(orjson.loads(await request.read()))
        except orjson.JSONDecodeError:
            raise json_error(400, "bad_body", "the body must be a JSON object") from None
        except ValueError as exc:
            raise json_error(400, "bad_body", str(exc)) from None
        if user["username"] in self.users:
            raise json_error(409, "exists", f"admin user {user['username']!r} already exists")
        self.users[user["username"]] = user
        return json_response(user, status=201)

    async def delete(self, request: web.Request) -> web.Response:
        del self.users[self._existing(request)]
        return web.Response(status=204)


def add_admin_routes(app: web.Application) -> None:
    """Mount ``/admin/users`` with a fresh set of admin users on ``app``."""
    users = _AdminUsers()
    app.router.add_get("/admin/users", users.list)
    app.router.add_post("/admin/users", users.create)
    app.router.add_get("/admin/users/{username}", users.get)
    app.router.add_delete("/admin/users/{username}", users.delete)
