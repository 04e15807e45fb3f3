"""The Spanner schema is append-only: every statement a deployed database may have applied
is pinned, in order, in ``infra/schema.lock``, and changing, reordering or removing one fails
here. Why: the program hands every statement to ``gcp.spanner.Database(ddls=...)``; the
provider applies statements appended since the last ``pulumi up`` as a schema update, but
any other change to the list replaces the database (its data is lost, or, with drop
protection, the update fails)."""

from __future__ import annotations

import hashlib
import re

import pytest

from caplab.core.topology import TOPOLOGY, Migration, SpannerDatabase
from infra.offline import PROGRAM_DIR, MockedStack

LOCK = PROGRAM_DIR / "schema.lock"


def lock_lines(database: SpannerDatabase) -> list[str]:
    """One line per statement: migration id, position, SHA-256 of the exact text, and the
    statement's first words (for the reader)."""
    lines = []
    for migration in database.migrations:
        for position, statement in enumerate(migration.statements):
            digest = hashlib.sha256(statement.encode()).hexdigest()
            words = " ".join(statement.split()[:3])
            lines.append(f"{migration.id} {position} sha256:{digest} {words}")
    return lines


def pinned() -> list[str]:
    return [
        line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def append_only_violation(pins: list[str], current: list[str]) -> str | None:
    """Why ``current`` is not ``pins`` with lines appended (None when it is)."""
    for index, pin in enumerate(pins):
        if index >= len(current):
            return f"pinned statement removed: {pin}"
        if current[index] != pin:
            return (
                f"pinned statement changed or moved: {pin}\n  is now: {current[index]}\n"
                "Shipped migrations never change: add a new migration at the end instead."
            )
    if len(current) > len(pins):
        added = "\n".join(current[len(pins) :])
        return f"new statements are not pinned yet; append to {LOCK.name}:\n{added}"
    return None


def test_the_schema_is_the_pinned_one_with_nothing_edited() -> None:
    """Every pinned statement is unchanged and in place, and every statement is pinned."""
    assert append_only_violation(pinned(), lock_lines(TOPOLOGY.spanner)) is None


def _with(database: SpannerDatabase, migrations: tuple[Migration, ...]) -> SpannerDatabase:
    return SpannerDatabase(database.instance, database.database, migrations)


def test_an_edited_statement_fails_and_an_appended_migration_asks_to_be_pinned() -> None:
    """The check has teeth: widening a column in a shipped migration, reordering two
    migrations and dropping one are refused; a new migration at the end is only asked for
    its pin."""
    database = TOPOLOGY.spanner
    first, *rest = database.migrations
    widened = Migration(
        first.id,
        (first.statements[0].replace("STRING(256)", "STRING(512)"), *first.statements[1:]),
    )
    for changed in (
        (widened, *rest),
        (*reversed(database.migrations),),
        tuple(rest),
    ):
        message = append_only_violation(pinned(), lock_lines(_with(database, changed)))
        assert message is not None
        assert "new statements" not in message
    added = Migration("m9999_probe", ("CREATE INDEX AccountsByOwner ON Accounts (Owner)",))
    message = append_only_violation(
        pinned(), lock_lines(_with(database, (*database.migrations, added)))
    )
    assert message is not None
    assert message.startswith("new statements are not pinned yet")
    assert "m9999_probe 0 sha256:" in message


def test_migration_ids_are_spanner_operation_ids() -> None:
    """Ids are unique and valid operation ids, so the emulator bootstrap can run each
    migration once."""
    ids = [migration.id for migration in TOPOLOGY.spanner.migrations]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids)
    with pytest.raises(ValueError, match="operation id"):
        Migration("0001-Bad", ("CREATE TABLE X (K INT64) PRIMARY KEY (K)",))
    with pytest.raises(ValueError, match="duplicate"):
        _with(TOPOLOGY.spanner, (TOPOLOGY.spanner.migrations[0],) * 2)


def test_the_database_is_given_every_statement_in_order(mocked: MockedStack) -> None:
    """What the provider diffs: the flattened migrations, oldest first."""
    database = mocked.named("gcp:spanner/database:Database", "ledger").inputs
    assert database["ddls"] == [s for m in TOPOLOGY.spanner.migrations for s in m.statements]
