"""The Artifact Registry repository the service image is pushed to."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

REPOSITORY_ID = "caplab"


@dataclass
class ImageRepositoryArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]


class ImageRepository(pulumi.ComponentResource):
    """A Docker repository; ``image_base`` is where Cloud Build pushes
    (``<region>-docker.pkg.dev/<project>/caplab``)."""

    def __init__(
        self, name: str, args: ImageRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:ImageRepository", name, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            name,
            gcp.artifactregistry.RepositoryArgs(
                project=args.project,
                location=args.region,
                repository_id=REPOSITORY_ID,
                format="DOCKER",
                description="caplab service images",
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.image_base = pulumi.Output.concat(
            args.region, "-docker.pkg.dev/", args.project, "/", REPOSITORY_ID
        )
        self.register_outputs({"image_base": self.image_base})
