"""The Google APIs a fresh project must enable before anything else can be created."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.deployer import REQUIRED_APIS


@dataclass
class ProjectApisArgs:
    project: pulumi.Input[str]
    services: Sequence[str] = REQUIRED_APIS


class ProjectApis(pulumi.ComponentResource):
    """Enables each API; other resources pass ``depends_on=[apis]`` so none is created
    before the API behind it answers. APIs stay enabled on destroy: other workloads in the
    project may use them."""

    def __init__(
        self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:ProjectApis", name, None, opts)
        self.services = {
            api: gcp.projects.Service(
                api.split(".")[0],
                gcp.projects.ServiceArgs(
                    project=args.project, service=api, disable_on_destroy=False
                ),
                pulumi.ResourceOptions(parent=self),
            )
            for api in args.services
        }
        self.register_outputs({"services": list(self.services)})
