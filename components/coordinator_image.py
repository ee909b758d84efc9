"""The coordinator's container image: an ECR repository and the image Pulumi builds and pushes.

A component of the coordinator service (components/coordinator_service.py), which runs the image by
the digest this gives it: the same sources give the same tag and digest, so an unchanged
coordinator pushes nothing and refreshes no instance.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

# Pulumi runs the program and its providers in the project directory.
PROJECT_DIR = Path(__file__).resolve().parent.parent
IMAGE_CONTEXT = PROJECT_DIR / "coordinator"


@dataclass
class CoordinatorImageArgs:
    tags: Mapping[str, str]
    context: Path = IMAGE_CONTEXT


def source_tag(context: Path) -> str:
    """A content hash of the image's build context, honouring its `.dockerignore`.

    The repository's tags are immutable, so every pushed build needs a tag of its own; the same
    sources give the same tag, so an unchanged coordinator pushes nothing new.
    """
    ignore_file = context / ".dockerignore"
    patterns = [
        line.strip().removeprefix("**/")
        for line in (ignore_file.read_text().splitlines() if ignore_file.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        if any(
            fnmatch.fnmatch(candidate, pattern)
            for pattern in patterns
            for candidate in (*prefixes, *parts)
        ):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"src-{digest.hexdigest()[:16]}"


class CoordinatorImage(pulumi.ComponentResource):
    """ECR repository (scan on push, immutable tags, last 20 images) and the arm64 image in it."""

    repository_arn: pulumi.Output[str]
    # <repository>@sha256:<digest>: what the hosts pull and run.
    ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: CoordinatorImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("streamr:coordinator:Image", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{name}-repo",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            tags=_tagged(args.tags, f"{name}-repo"),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repo-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "Keep the 20 most recent images (rollback room)",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 20,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=invoke
        )
        image = docker_build.Image(
            f"{name}-image",
            # Relative to the project: the same sources from another checkout (another CI
            # runner's path) are the same input, so no rebuild and no push to an existing
            # immutable tag.
            context={"location": os.path.relpath(args.context, PROJECT_DIR)},
            platforms=[docker_build.Platform.LINUX_ARM64],
            push=True,
            # Preview machines have no builder; the image is built by `pulumi up` only.
            build_on_preview=False,
            tags=[pulumi.Output.concat(repository.repository_url, ":", source_tag(args.context))],
            registries=[
                {
                    "address": repository.repository_url,
                    "username": token.user_name,
                    "password": token.password,
                }
            ],
            opts=child,
        )

        self.repository_arn = repository.arn
        self.ref = pulumi.Output.concat(repository.repository_url, "@", image.digest)
        self.register_outputs({"repositoryArn": self.repository_arn, "ref": self.ref})


def _tagged(tags: Mapping[str, str], resource_name: str) -> dict[str, str]:
    return {**tags, "Name": resource_name}
