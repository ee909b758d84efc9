"""Accounts: registration, login, logout, the first admin, and admin account management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError

from ..domain import tokens
from ..models import ApiToken, Role, User
from ..schemas import CredentialsIn, ErrorOut, LoginIn, LoginOut, RegisterIn, UserOut
from ..security import hash_password, same_secret, verify_password
from .deps import ERRORS, NOT_FOUND, Admin, AnyUser, Ctx, RateLimited, RowId, Session

router = APIRouter(prefix="/api/v1", tags=["accounts"])
CONFLICT = {409: {"model": ErrorOut, "description": "already exists"}}
LIMITED = {429: {"model": ErrorOut, "description": "too many attempts"}}


async def _create_user(session: Session, username: str, password: str, role: Role) -> User:
    user = User(username=username, password_hash=hash_password(password), role=role.value)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "username already taken") from None
    return user


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    dependencies=[RateLimited],
    responses={**CONFLICT, **LIMITED},
)
async def register(body: RegisterIn, session: Session) -> User:
    """Streamers and friends sign themselves up; admins come only from the bootstrap secret."""
    return await _create_user(session, body.username, body.password, Role(body.role))


@router.post(
    "/auth/bootstrap-admin",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    dependencies=[RateLimited],
    responses={**ERRORS, **CONFLICT, **LIMITED},
)
async def bootstrap_admin(
    body: CredentialsIn,
    ctx: Ctx,
    session: Session,
    x_bootstrap_token: Annotated[str | None, Header()] = None,
) -> User:
    """Create the first admin with the operator's bootstrap secret; refused once an admin exists."""
    expected = ctx.settings.admin_bootstrap_token
    if expected is None or not same_secret(expected.get_secret_value(), x_bootstrap_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong or missing X-Bootstrap-Token")
    # One bootstrap at a time across instances; then look for an existing admin.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('streamr:bootstrap-admin'))"))
    if await session.scalar(select(exists().where(User.role == Role.ADMIN.value))):
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin already exists")
    return await _create_user(session, body.username, body.password, Role.ADMIN)


@router.post(
    "/auth/login",
    response_model=LoginOut,
    dependencies=[RateLimited],
    responses={401: {"model": ErrorOut, "description": "wrong username or password"}, **LIMITED},
)
async def login(body: LoginIn, ctx: Ctx, session: Session) -> LoginOut:
    user = await session.scalar(select(User).where(User.username == body.username))
    if not verify_password(user.password_hash if user else None, body.password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    lifetime = timedelta(hours=ctx.settings.session_token_ttl_hours)
    token, expires_at = await tokens.issue(ctx, session, user.id, None, lifetime)
    await session.commit()
    return LoginOut(token=token, expires_at=expires_at, user=UserOut.model_validate(user))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def logout(principal: AnyUser, ctx: Ctx, session: Session) -> None:
    """Revoke the token this request was made with."""
    await tokens.revoke(ctx, session, ApiToken.token_hash == principal.token_hash)


@router.get("/auth/me", response_model=UserOut, responses=ERRORS)
async def me(principal: AnyUser, session: Session) -> User:
    return await session.get_one(User, principal.user_id)


@router.get("/admin/users", response_model=list[UserOut], responses=ERRORS)
async def list_users(_: Admin, session: Session) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.id)))


@router.post(
    "/admin/users/{user_id}/revoke-tokens",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **NOT_FOUND},
)
async def revoke_user_tokens(user_id: RowId, _: Admin, ctx: Ctx, session: Session) -> None:
    """Sign a user out everywhere, their nodes included."""
    if await session.get(User, user_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    await tokens.revoke(ctx, session, ApiToken.user_id == user_id)
