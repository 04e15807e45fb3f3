"""What one generator of a multi-generator run leaves behind: a *shard*, and where shards go.

A shard is one gzip-compressed JSON document (``format: caplab-shard/1``) named after its part
(``shard-0003-of-0020.json.gz``): the run's id, configuration and accounts, the generator's
part of the plan, its clock (:mod:`loadtest.clock`) and the offset from its monotonic clock to
its wall clock, its statistics with the HDR histograms encoded (:mod:`loadtest.stats`), and
every record in column form (:func:`loadtest.records.to_columns`), times as it measured them.
``caplab load merge`` (:mod:`loadtest.merge`) turns the shards of one run into one report.

Shards go to a *location*: a directory, or ``gs://BUCKET/PREFIX`` (Cloud Storage, through
google-cloud-storage with the ambient credentials). A shard is written once: in a bucket the
upload is conditional on the object not existing (``if_generation_match=0``), so a task
needs only ``storage.objects.create`` and can never overwrite another task's shard.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from caplab.core.errors import CaplabError
from loadtest.clock import Clock
from loadtest.config import LoadConfig
from loadtest.plan import Part
from loadtest.records import Record, from_columns, to_columns
from loadtest.runner import RunResult
from loadtest.stats import encode_stats, kind_stats, scheduling_lag

FORMAT = "caplab-shard/1"
_NAME = re.compile(r"^shard-(\d{4,})-of-(\d{4,})\.json\.gz$")


class ShardError(CaplabError):
    pass


def shard_name(part: Part) -> str:
    return f"shard-{part.index:04d}-of-{part.count:04d}.json.gz"


class Store(Protocol):
    """Where a run's shards are kept."""

    def put(self, name: str, data: bytes) -> str:
        """Write ``name`` once; return where it went."""
        ...

    def get(self, name: str) -> bytes: ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class DirectoryStore:
    path: Path

    def put(self, name: str, data: bytes) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / name
        try:
            with target.open("xb") as output:
                output.write(data)
        except FileExistsError as error:
            raise ShardError(f"{target} exists already: one shard per part and run") from error
        return str(target)

    def get(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def names(self) -> list[str]:
        if not self.path.is_dir():
            raise ShardError(f"no shard directory at {self.path}")
        return sorted(p.name for p in self.path.iterdir())


@dataclass(frozen=True)
class BucketStore:
    """``gs://bucket/prefix``. Not exercised by the test suite (no Cloud Storage emulator)."""

    bucket: str
    prefix: str

    def _client(self) -> Any:
        from caplab.core.clients import build_storage_client

        return build_storage_client()

    def _object(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, name: str, data: bytes) -> str:
        blob = self._client().bucket(self.bucket).blob(self._object(name))
        blob.upload_from_string(data, content_type="application/gzip", if_generation_match=0)
        return f"gs://{self.bucket}/{self._object(name)}"

    def get(self, name: str) -> bytes:
        return bytes(
            self._client().bucket(self.bucket).blob(self._object(name)).download_as_bytes()
        )

    def names(self) -> list[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        blobs = self._client().list_blobs(self.bucket, prefix=prefix, delimiter="/")
        return sorted(blob.name[len(prefix) :] for blob in blobs)


def open_store(location: str) -> Store:
    """A directory path, or ``gs://BUCKET[/PREFIX]``."""
    if location.startswith("gs://"):
        bucket, _, prefix = location[len("gs://") :].partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", bucket):
            raise ShardError(f"{location!r}: not a Cloud Storage bucket name")
        return BucketStore(bucket, prefix.strip("/"))
    if "://" in location:
        raise ShardError(f"{location!r}: shards go to a directory or to gs://BUCKET/PREFIX")
    return DirectoryStore(Path(location))


# ---- the document ------------------------------------------------------------------------


@dataclass
class Shard:
    """One generator's part of a run, as read back."""

    run_id: str
    part: Part
    config: LoadConfig
    accounts: list[str]
    endpoints: dict[str, str | None]
    started_wall: float
    wall_offset: float
    cpu_seconds: float
    clock: Clock
    notes: list[str]
    dropped: Counter[str]
    stats: dict[str, dict[str, Any]]
    lag: str
    setup: list[Record]
    records: list[Record]


def document_of(result: RunResult) -> dict[str, Any]:
    """The shard document of one generator's run."""
    endpoints = result.endpoints
    return {
        "format": FORMAT,
        "run_id": result.run_id,
        "part": {"index": result.part.index, "count": result.part.count},
        "config": dict(result.config.__dict__),
        "accounts": result.accounts,
        "endpoints": {
            "ledger_url": endpoints.ledger_url,
            "activity_url": endpoints.activity_url,
            "replica_url": endpoints.replica_url,
        },
        "started_wall": result.started_wall,
        "wall_offset": result.wall_offset,
        "cpu_seconds": result.cpu_seconds,
        "clock": result.clock.to_json(),
        "notes": result.notes,
        "dropped": dict(result.dropped),
        "stats": encode_stats(kind_stats(result)),
        "lag": scheduling_lag(result).encode().decode(),
        "setup": {"count": len(result.setup), "columns": to_columns(result.setup)},
        "records": {"count": len(result.records), "columns": to_columns(result.records)},
    }


def write_shard(result: RunResult, store: Store) -> str:
    """Write ``result`` as its part's shard; return where it went."""
    data = gzip.compress(json.dumps(document_of(result)).encode(), compresslevel=1)
    return store.put(shard_name(result.part), data)


def parse_shard(document: dict[str, Any], where: str) -> Shard:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ShardError(f"{where}: not a {FORMAT} document")
    try:
        return Shard(
            run_id=document["run_id"],
            part=Part(document["part"]["index"], document["part"]["count"]),
            config=LoadConfig(**document["config"]),
            accounts=list(document["accounts"]),
            endpoints=dict(document["endpoints"]),
            started_wall=float(document["started_wall"]),
            wall_offset=float(document["wall_offset"]),
            cpu_seconds=float(document["cpu_seconds"]),
            clock=Clock.from_json(document["clock"]),
            notes=list(document["notes"]),
            dropped=Counter(document["dropped"]),
            stats=dict(document["stats"]),
            lag=str(document["lag"]),
            setup=from_columns(document["setup"]["columns"], document["setup"]["count"]),
            records=from_columns(document["records"]["columns"], document["records"]["count"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ShardError(f"{where}: malformed shard ({error!r})") from error


def read_shards(store: Store) -> Iterator[Shard]:
    """Every shard at ``store`` (other names are ignored), in part order."""
    names = [n for n in store.names() if _NAME.match(n)]
    if not names:
        raise ShardError("no shard-NNNN-of-NNNN.json.gz there")
    for name in names:
        try:
            document = json.loads(gzip.decompress(store.get(name)))
        except (OSError, ValueError) as error:
            raise ShardError(f"{name}: not a gzip-compressed JSON document ({error})") from error
        yield parse_shard(document, name)
