"""Route 53, the edge-name records' store: one hosted zone, written with
`ChangeResourceRecordSets` only (the coordinator's role may do nothing else there, and only to
edge names and their challenges). boto3 is synchronous, so each call runs in a worker thread and
the event loop goes on serving."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# What Route 53 answers when a deleted record is not there (or no longer holds that value).
_NOT_THERE = ("but it was not found", "values provided do not match")
_BUSY = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "ServiceUnavailable"}


def already_gone(code: str, message: str, changes: tuple[dict[str, Any], ...]) -> bool:
    """Whether Route 53's refusal of a batch of deletions means there was nothing to delete (the
    record is not there, or no longer holds the value being withdrawn)."""
    deleting = all(change["Action"] == "DELETE" for change in changes)
    return code == "InvalidChangeBatch" and deleting and any(m in message for m in _NOT_THERE)


class EdgeDnsError(Exception):
    """Route 53 could not do what the coordinator asked; `status` is what the caller gets."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class EdgeRecords:
    """Writes edge-name records into one hosted zone."""

    def __init__(self, zone_id: str, client: Any | None = None) -> None:
        self.zone_id = zone_id
        # Route 53 is global: its endpoint is in us-east-1 whatever the instance's region.
        self._client = client or boto3.client(
            "route53",
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5),
        )

    async def change(self, *changes: dict[str, Any]) -> None:
        """Apply `changes` as one batch (all or nothing); returns once Route 53 accepted it.

        Deleting what is not there is done already, not an error: a retried removal succeeds.
        """
        try:
            await asyncio.to_thread(
                self._client.change_resource_record_sets,
                HostedZoneId=self.zone_id,
                ChangeBatch={"Changes": list(changes)},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if already_gone(code, message, changes):
                return
            if code in _BUSY:
                raise EdgeDnsError(
                    503, f"Route 53 is busy, nothing was changed; try again ({code})"
                ) from None
            raise EdgeDnsError(502, f"Route 53 refused the change: {code}: {message}") from None
        except BotoCoreError as error:
            raise EdgeDnsError(
                503, f"Route 53 is unavailable, nothing was changed; try again ({error})"
            ) from None
