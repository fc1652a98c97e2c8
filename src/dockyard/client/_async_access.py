"""Accounts and service keys. ``_sync_access.py`` is generated from this file
(``scripts/unasync_client.py``); edit this one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.client._async_transport import AsyncTransport, new_idempotency_key

if TYPE_CHECKING:
    from dockyard.client.models import (
        Account,
        AccountWithUsage,
        MyAccount,
        NewServiceKey,
        ServiceKeyInfo,
    )


class AsyncAccounts:
    """``/accounts`` (admins), and the caller's own account."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    async def list(self) -> list[Account]:
        from dockyard.client.models import AccountList

        resp = await self._http.request("GET", "/accounts")
        return AccountList.model_validate(resp.json()).accounts

    async def get(self, username: str) -> AccountWithUsage:
        from dockyard.client.models import AccountWithUsage

        resp = await self._http.request("GET", f"/accounts/{username}")
        return AccountWithUsage.model_validate(resp.json())

    async def me(self) -> MyAccount:
        from dockyard.client.models import MyAccount

        resp = await self._http.request("GET", "/accounts/me")
        return MyAccount.model_validate(resp.json())

    async def create(
        self,
        username: str,
        password: str,
        *,
        role: str = "user",
        quota: dict[str, Any] | None = None,
    ) -> Account:
        from dockyard.client.models import Account

        body: dict[str, Any] = {"username": username, "password": password, "role": role}
        if quota is not None:
            body["quota"] = quota
        headers = {"Idempotency-Key": new_idempotency_key()}
        resp = await self._http.request("POST", "/accounts", json=body, headers=headers)
        return Account.model_validate(resp.json())

    async def update(self, username: str, **changes: Any) -> AccountWithUsage:
        """``role``, ``password`` or ``quota`` (replaced whole)."""
        from dockyard.client.models import AccountWithUsage

        resp = await self._http.request("PATCH", f"/accounts/{username}", json=changes)
        return AccountWithUsage.model_validate(resp.json())

    async def delete(self, username: str) -> None:
        await self._http.request("DELETE", f"/accounts/{username}")


class AsyncKeys:
    """``/servicekeys``: the caller's service keys (admins: everyone's)."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    async def list(self, *, owner: str | None = None) -> list[ServiceKeyInfo]:
        from dockyard.client.models import ServiceKeyList

        resp = await self._http.request("GET", "/servicekeys", params={"owner": owner})
        return ServiceKeyList.model_validate(resp.json()).servicekeys

    async def create(
        self,
        *,
        description: str | None = None,
        role: str | None = None,
        expires_in: int | None = None,
    ) -> NewServiceKey:
        """A new key; ``.key`` is shown in this answer only."""
        from dockyard.client.models import NewServiceKey

        body = {"description": description, "role": role, "expires_in": expires_in}
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"Idempotency-Key": new_idempotency_key()}
        resp = await self._http.request("POST", "/servicekeys", json=body, headers=headers)
        return NewServiceKey.model_validate(resp.json())

    async def delete(self, key_id: str) -> None:
        await self._http.request("DELETE", f"/servicekeys/{key_id}")
