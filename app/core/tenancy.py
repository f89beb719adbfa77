"""Tenancy, enforced in one place (Invariant 8).

Every tenant table mixes in ``TenantMixin``. A session is bound to one store with
``bind_store(session, store_id)``; from then on every ORM SELECT, UPDATE and DELETE
on a tenant model is filtered by that store (``with_loader_criteria``), and every new
tenant row gets that ``store_id``. A query on a tenant model through a session bound
to no store fails closed, unless the caller opted out with ``system_scope(session)``
(relays, sweepers and the CLI, which act for every store on purpose).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    UOWTransaction,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

STORE_KEY = "till_store_id"
SYSTEM_KEY = "till_system_scope"


class TenancyError(RuntimeError):
    """A tenant query or write without a store: a programming error, never user input."""


class TenantMixin:
    """Adds ``store_id`` (FK to stores) to a model, indexed on its own unless the model says otherwise.

    A model sets ``__store_index__ = False`` when another index already serves every query by store
    (a unique key that starts with ``store_id``), or when rows are only ever reached through a parent
    (order lines by order). On the checkout's hot tables a lone ``store_id`` index cost an index insert
    per row and, one store having nearly all rows, tempted the planner into scanning it (docs/adr/0003).
    """

    __store_index__: bool = True

    @declared_attr
    def store_id(cls) -> Mapped[uuid.UUID]:
        index = cls.__dict__.get("__store_index__", True)
        return mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False, index=index)


def bind_store(session: AsyncSession | Session, store_id: uuid.UUID) -> None:
    current = session.info.get(STORE_KEY)
    if current is not None and current != store_id:
        raise TenancyError("session is already bound to another store")
    session.info[STORE_KEY] = store_id


def bound_store(session: AsyncSession | Session) -> uuid.UUID | None:
    value = session.info.get(STORE_KEY)
    return value if isinstance(value, uuid.UUID) else None


def system_scope(session: AsyncSession | Session) -> None:
    """Let this session see every store's rows (workers, relays, CLI)."""
    session.info[SYSTEM_KEY] = True


def _touches_tenant_model(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, TenantMixin) for mapper in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_store(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent row was already scoped
    if not _touches_tenant_model(state):
        return
    store_id = state.session.info.get(STORE_KEY)
    if store_id is None:
        if state.session.info.get(SYSTEM_KEY):
            return
        raise TenancyError("tenant query on a session bound to no store")
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantMixin,
            lambda cls: cls.store_id == store_id,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_store(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    store_id = session.info.get(STORE_KEY)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantMixin):
            continue
        if obj.store_id is None:
            if store_id is None:
                raise TenancyError(f"new {type(obj).__name__} has no store")
            obj.store_id = store_id
        elif store_id is not None and obj.store_id != store_id:
            raise TenancyError(f"{type(obj).__name__} belongs to another store")
