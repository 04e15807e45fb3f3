"""Operator commands: what someone running caplab does to a stack (``caplab dlq``)."""
