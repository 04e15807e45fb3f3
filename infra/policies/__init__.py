"""The caplab policy pack (``pulumi preview --policy-pack infra/policies``)."""
