"""One run of the row-key lab: write the workload under every design, time the queries, model
the tablets (or read the real ones), compare the partitioning schemes, clean up."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console

from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings
from caplab.core.errors import CaplabError
from loadtest.rowkeys import measure, partitioning, tablets
from loadtest.rowkeys.designs import Design, designs
from loadtest.rowkeys.workload import Side, WorkloadConfig, sides

MODEL = "model"
SAMPLE_ROW_KEYS = "sample_row_keys"


class RowkeysError(CaplabError):
    pass


@dataclass(frozen=True)
class LabConfig:
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    model: tablets.ModelConfig = field(default_factory=tablets.ModelConfig)
    queries: int = 6
    """Samples of each query per design."""
    page: int = 20
    range_seconds: float = 1.0
    salt_buckets: int = 8
    node_write_rate: float = tablets.NODE_WRITE_ROWS_PER_S
    target_rate: float = 50_000.0
    """Row writes per second to size the cluster for (nodes_needed)."""
    nodes: int = 4
    virtual_nodes: int = 64
    heatmap_buckets: int = 64

    def __post_init__(self) -> None:
        if self.queries < 1 or self.page < 1 or self.range_seconds <= 0:
            raise ValueError("queries and page must be >= 1 and the range positive")
        if self.salt_buckets < 2 or self.nodes < 1 or self.virtual_nodes < 1:
            raise ValueError("salt buckets >= 2, nodes >= 1, virtual nodes >= 1")
        if self.node_write_rate <= 0 or self.target_rate <= 0:
            raise ValueError("write rates must be positive")
        if self.model.warmup >= self.workload.duration:
            raise ValueError("the warm-up must be shorter than the run")


@dataclass(frozen=True)
class Target:
    """Where the lab's tables go: the emulator (tablets modelled) or a real instance
    (tablets from SampleRowKeys)."""

    settings: GcpSettings
    emulator_host: str | None

    @property
    def tablet_mode(self) -> str:
        return MODEL if self.emulator_host else SAMPLE_ROW_KEYS

    def describe(self) -> str:
        if self.emulator_host:
            return f"Bigtable emulator at {self.emulator_host}"
        return f"projects/{self.settings.project}/instances/{self.settings.bigtable_instance}"


@dataclass(frozen=True)
class DesignResult:
    design: Design
    key_example: bytes
    replay: tablets.Replay
    heatmap: list[list[int]]
    queries: dict[str, measure.QueryStats]
    nodes_needed: int | None
    write_ceiling: float


@dataclass(frozen=True)
class LabResult:
    run_id: str
    config: LabConfig
    target: Target
    started: datetime
    rows: int
    transfers: int
    designs: list[DesignResult]
    partitioning: partitioning.Partitioning
    seconds: float

    @property
    def wrong_answers(self) -> int:
        return sum(q.wrong for d in self.designs for q in d.queries.values())


def row_writes(design: Design, rows: list[Side]) -> list[tablets.Write]:
    """What each row adds to the table: its key and cells (family, qualifier, value)."""
    writes = []
    for side in rows:
        key = design.key(side)
        cells = sum(len(measure.FAMILY) + len(c) + len(v) for c, v in side.cells().items())
        writes.append(tablets.Write(side.at, key, len(key) + cells))
    return writes


def run(config: LabConfig, target: Target, console: Console, keep: bool = False) -> LabResult:
    """The whole lab; the tables are deleted at the end unless ``keep``."""
    began = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    started = datetime.now(UTC).replace(microsecond=0)
    rows = sides(config.workload, started)
    if not rows:
        raise RowkeysError("the workload has no transfers: raise --rate or --duration")
    duration = config.workload.duration
    queries = measure.sample_queries(
        rows,
        started,
        config.queries,
        config.page,
        config.range_seconds,
        duration,
        config.workload.seed,
    )
    all_designs = designs(config.salt_buckets)
    clients = ClientFactory(target.settings)
    instance = clients.bigtable_admin.instance(target.settings.bigtable_instance)
    console.print(
        f"rowkeys run {run_id}: {len(rows) // 2} transfers ({len(rows)} rows) under "
        f"{len(all_designs)} designs into {target.describe()}"
    )
    created: list[str] = []
    results = []
    try:
        for design in all_designs:
            name = measure.table_id(run_id, design.name)
            table = measure.create_table(instance, name)
            created.append(name)
            measure.write(table, design, rows)
            stats = measure.measure(table, design, rows, queries)
            real = measure.sample_row_keys(table) if target.tablet_mode == SAMPLE_ROW_KEYS else None
            writes = row_writes(design, rows)
            replay = tablets.replay(writes, duration, config.model, real)
            share = replay.max_tablet_write_share
            results.append(
                DesignResult(
                    design=design,
                    key_example=design.key(rows[0]),
                    replay=replay,
                    heatmap=tablets.heatmap(
                        writes, duration, config.model.window, config.heatmap_buckets
                    ),
                    queries=stats,
                    nodes_needed=tablets.nodes_needed(
                        share, config.target_rate, config.node_write_rate
                    ),
                    write_ceiling=tablets.write_ceiling(share, config.node_write_rate),
                )
            )
            console.print(f"  {design.name}: written, queried and modelled")
    finally:
        if not keep:
            for name in created:
                instance.table(name).delete()
    in_use = next(d for d in all_designs if d.in_use)
    scheme = partitioning.compare([in_use.key(r) for r in rows], config.nodes, config.virtual_nodes)
    return LabResult(
        run_id=run_id,
        config=config,
        target=target,
        started=started,
        rows=len(rows),
        transfers=len(rows) // 2,
        designs=results,
        partitioning=scheme,
        seconds=time.perf_counter() - began,
    )
