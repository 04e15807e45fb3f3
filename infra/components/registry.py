"""The Artifact Registry repository the service image is pushed to, and the image a stack
runs.

Which image a stack runs is decided in the registry, not in a stack file: Cloud Build pushes
``services:<build id>`` and moves the tag ``services:<stack>`` to it, and every ``pulumi up``
(from the build or from a laptop) resolves that tag to its digest with a data source. So the
next ``pulumi up`` keeps the image the last build deployed, and a rollback is a tag move
(``gcloud artifacts docker tags add ...@sha256:<old> .../services:<stack>``) followed by
``pulumi up``. Until the stack's tag exists, the services run a public placeholder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

REPOSITORY_ID = "caplab"
IMAGE_NAME = "services"


@dataclass
class ImageRepositoryArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]


DockerImage = gcp.artifactregistry.outputs.GetDockerImagesDockerImageResult


def tagged(images: Sequence[DockerImage], tag: str) -> str | None:
    """The digest reference (``<region>-docker.pkg.dev/<project>/caplab/services@sha256:...``)
    of the ``services`` image carrying ``tag``, or None when no image carries it."""
    for image in images:
        if image.image_name == IMAGE_NAME and tag in (image.tags or []):
            return image.self_link
    return None


class ImageRepository(pulumi.ComponentResource):
    """A Docker repository; ``image_base`` is where Cloud Build pushes
    (``<region>-docker.pkg.dev/<project>/caplab/services``)."""

    def __init__(
        self, name: str, args: ImageRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:ImageRepository", name, None, opts)
        self._args = args
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
            args.region, "-docker.pkg.dev/", args.project, "/", REPOSITORY_ID, "/", IMAGE_NAME
        )
        self.register_outputs({"image_base": self.image_base})

    def deployed(self, tag: str) -> pulumi.Output[str | None]:
        """The digest ``tag`` points to now, read when the program runs. The read waits for
        the repository: on the first ``pulumi up`` it runs once the repository exists (and
        finds nothing); a preview of a stack whose repository is still to be created shows
        it unknown."""
        listing = gcp.artifactregistry.get_docker_images_output(
            location=self._args.region,
            project=self._args.project,
            repository_id=REPOSITORY_ID,
            opts=pulumi.InvokeOutputOptions(depends_on=[self.repository]),
        )
        return listing.docker_images.apply(lambda images: tagged(images, tag))
