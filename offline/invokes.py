"""Realistic answers to the provider functions (invokes) the program calls."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from offline.computed import ACCOUNT_ID, digest


def _availability_zones(args: dict[str, Any], region: str) -> dict[str, Any]:
    letters = "abc"
    return {
        "id": region,
        "region": region,
        "names": [f"{region}{letter}" for letter in letters],
        "zoneIds": [f"{region[:2]}{region.split('-')[1][0]}1-az{index}" for index in (1, 2, 3)],
        "groupNames": [region] * len(letters),
        "state": args.get("state", "available"),
    }


def _ssm_parameter(args: dict[str, Any], region: str) -> dict[str, Any]:
    name = args["name"]
    is_image = "/ami-" in name or name.endswith("-ami")
    value = f"ami-{digest(name, region)}" if is_image else f"offline-value-of-{name}"
    return {
        "id": name,
        "name": name,
        "arn": f"arn:aws:ssm:{region}::parameter{name}",
        "type": "String",
        "value": value,
        "insecureValue": value,
        "version": 1,
        "withDecryption": args.get("withDecryption", True),
        "region": region,
    }


def _ami(args: dict[str, Any], region: str) -> dict[str, Any]:
    image_id = f"ami-{digest(json.dumps(args, sort_keys=True), region)}"
    return {
        "id": image_id,
        "imageId": image_id,
        "architecture": "arm64",
        "name": "al2023-ami-2023.6-kernel-6.1-arm64",
        "rootDeviceName": "/dev/xvda",
        "virtualizationType": "hvm",
        "region": region,
    }


def _caller_identity(_args: dict[str, Any], _region: str) -> dict[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
        "userId": "AIDAOFFLINEOFFLINE",
    }


def _partition(_args: dict[str, Any], _region: str) -> dict[str, Any]:
    return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}


def _region(_args: dict[str, Any], region: str) -> dict[str, Any]:
    return {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


def _ecr_authorization_token(args: dict[str, Any], region: str) -> dict[str, Any]:
    registry = args.get("registryId") or ACCOUNT_ID
    password = f"offline-ecr-password-{digest(registry, region)}"
    return {
        "id": region,
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "expiresAt": "2030-01-01T12:00:00Z",
        "password": password,
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{region}.amazonaws.com",
        "userName": "AWS",
        "region": region,
    }


def _elb_service_account(_args: dict[str, Any], region: str) -> dict[str, Any]:
    # The region's Elastic Load Balancing account (eu-west-1's real one; others synthesised).
    account = "156460612806" if region == "eu-west-1" else str(int(digest(region), 16))[:12]
    return {"id": account, "arn": f"arn:aws:iam::{account}:root", "region": region}


def _policy_document(args: dict[str, Any], _region: str) -> dict[str, Any]:
    """Render `aws.iam.get_policy_document` the way AWS's provider does, so policies are real."""
    statements = []
    for statement in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if statement.get("sid"):
            rendered["Sid"] = statement["sid"]
        rendered["Effect"] = statement.get("effect") or "Allow"
        for key, wire in (("actions", "Action"), ("notActions", "NotAction")):
            if statement.get(key):
                rendered[wire] = _single_or_list(statement[key])
        for key, wire in (("resources", "Resource"), ("notResources", "NotResource")):
            if statement.get(key):
                rendered[wire] = _single_or_list(statement[key])
        for key, wire in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if statement.get(key):
                rendered[wire] = {
                    principal["type"]: _single_or_list(principal["identifiers"])
                    for principal in statement[key]
                }
        conditions: dict[str, dict[str, Any]] = {}
        for condition in statement.get("conditions") or []:
            conditions.setdefault(condition["test"], {})[condition["variable"]] = _single_or_list(
                condition["values"]
            )
        if conditions:
            rendered["Condition"] = conditions
        statements.append(rendered)
    document = {"Version": args.get("version") or "2012-10-17", "Statement": statements}
    text = json.dumps(document, indent=2)
    return {"id": digest(text), "json": text, "minifiedJson": json.dumps(document)}


def _single_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else sorted(values)


INVOKES: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:ssm/getParameter:getParameter": _ssm_parameter,
    "aws:ec2/getAmi:getAmi": _ami,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getRegion:getRegion": _region,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": _ecr_authorization_token,
    "aws:elb/getServiceAccount:getServiceAccount": _elb_service_account,
}
