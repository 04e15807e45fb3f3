"""The caplab policy pack: ``pulumi preview --policy-pack infra/policies`` from ``infra/``."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policies.rules import POLICIES

PolicyPack("caplab", POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
