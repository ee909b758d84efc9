"""What the coordinator asks of the mesh: single-use, short-lived, tagged pre-auth keys for nodes
(and, in `invites`, for viewers) that join, and removal of the machines that joined with a key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..context import AppContext
from ..mesh import (
    MeshAuthError,
    MeshError,
    MeshNotFound,
    MeshRejected,
    MeshUnavailable,
    PreAuthKey,
)

FRIEND_TAG = "tag:friend"
ORIGIN_TAG = "tag:origin"
# What an invite's key joins as: the ACL lets it reach friends' edges' HTTP port and nothing else.
VIEWER_TAG = "tag:viewer"


class MeshNotConfigured(MeshError):
    """No Headscale URL and API key in the settings."""


async def issue_key(ctx: AppContext, tag: str) -> PreAuthKey | None:
    """A key that joins one machine as `tag` within the configured minutes; None without a mesh."""
    if ctx.mesh is None:
        return None
    expiration = datetime.now(UTC) + timedelta(minutes=ctx.settings.mesh_key_ttl_minutes)
    return await ctx.mesh.create_preauth_key(tags=[tag], expiration=expiration)


async def remove_machines(ctx: AppContext, *key_ids: int | None) -> int:
    """Delete the mesh machines that joined with any of the pre-auth keys `key_ids`; how many
    were removed."""
    wanted = {key_id for key_id in key_ids if key_id is not None}
    if ctx.mesh is None or not wanted:
        return 0
    joined = [node for node in await ctx.mesh.list_nodes() if node.preauth_key_id in wanted]
    for node in joined:
        await ctx.mesh.delete_node(node.id)
    return len(joined)


def mesh_problem(error: MeshError) -> tuple[int, str]:
    """The HTTP status and message a caller gets when the mesh fails us."""
    if isinstance(error, MeshNotConfigured):
        return 503, "no mesh configured (STREAMR_HEADSCALE_URL and STREAMR_HEADSCALE_API_KEY)"
    if isinstance(error, MeshAuthError):
        return 502, "the mesh refused the coordinator's API key; an operator must renew it"
    if isinstance(error, MeshUnavailable):
        return 503, f"the mesh is unavailable, nothing was changed; try again ({error})"
    if isinstance(error, MeshRejected | MeshNotFound):
        return 502, f"the mesh refused the request: {error}"
    return 502, f"mesh error: {error}"
