"""The emulator bootstrap applies the topology's migrations the way a deployed database
receives them: each once, in order, and a migration appended later is applied to the
existing database on the next run (on a database of its own, so the shared one is left
alone)."""

from __future__ import annotations

import dataclasses
import uuid

from caplab.core.topology import TOPOLOGY, Migration
from emulators import bootstrap


def test_an_appended_migration_is_applied_once_to_the_existing_database(
    emulator_env: dict[str, str],
) -> None:
    """First run: the shipped migrations. Second run with one more migration: only that one
    is applied (re-applying a shipped one would fail on its existing table). Third run:
    nothing changes."""
    name = f"mig{uuid.uuid4().hex[:12]}"
    spanner = dataclasses.replace(TOPOLOGY.spanner, database=name)
    shipped = dataclasses.replace(TOPOLOGY, spanner=spanner)
    database = bootstrap.ensure_spanner(topology=shipped)
    first = list(database.ddl_statements)
    # Spanner reports the schema as it stands (an ALTER folds into its table's CREATE), so
    # compare the objects the migrations create, not the statements.
    created = {
        " ".join(statement.split()[:3])
        for statement in TOPOLOGY.spanner.ddl
        if statement.startswith(("CREATE TABLE", "CREATE INDEX", "CREATE UNIQUE INDEX"))
    }
    assert created <= {" ".join(statement.split()[:3]) for statement in first}

    index = "CREATE INDEX AccountsByOwner ON Accounts (Owner)"
    appended = dataclasses.replace(
        shipped,
        spanner=dataclasses.replace(
            spanner, migrations=(*spanner.migrations, Migration("m9999_probe", (index,)))
        ),
    )
    second = list(bootstrap.ensure_spanner(topology=appended).ddl_statements)
    # Spanner reports the schema as it stands (each index after its table), not its history.
    added = set(second) - set(first)
    assert set(first) <= set(second)
    assert [statement.split()[:3] for statement in added] == [index.split()[:3]]
    assert sorted(bootstrap.ensure_spanner(topology=appended).ddl_statements) == sorted(second)
    database.drop()
