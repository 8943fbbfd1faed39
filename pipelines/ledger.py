"""The drop ledger: per stage and rank, documents in + created = kept + removed (by reason).

``in`` is what the stage's intake counted and ``created`` what generating steps (LLM
rephrasing) counted under ``documents_created``, both from datatrove's per-rank stats;
``kept`` and ``removed`` are counted from the Parquet files actually written. Two
independent counts: a step that loses documents without recording them breaks the balance.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.atomic import atomic_path
from curation.intake import CREATED_COUNTER, INTAKE_COUNTER, INTAKE_STATS_NAME
from curation.shards import list_kept_shards, list_removed_shards, shard_rank


class LedgerError(RuntimeError):
    pass


@dataclass
class RankLedger:
    stage: str
    rank: int
    docs_in: int
    created: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    @property
    def balanced(self) -> bool:
        return self.docs_in + self.created == self.kept + self.removed_total


def stat_total(step: dict, key: str) -> int:
    value = step.get("stats", {}).get(key, 0)
    return int(value["total"] if isinstance(value, dict) else value)


def intake_count(stats: list[dict]) -> int:
    """Documents the intake step counted, from a saved datatrove PipelineStats JSON list."""
    for step in stats:
        if step.get("name") == INTAKE_STATS_NAME:
            return stat_total(step, INTAKE_COUNTER)
    raise LedgerError(f"no '{INTAKE_STATS_NAME}' step in the stats: the stage pipeline has no intake")


def rank_stats(logs_dir: Path, tasks: int, stage: str = "") -> list[list[dict]]:
    """Every rank's saved datatrove stats (a list of steps each); a rank without them did not complete."""
    stats = []
    for rank in range(tasks):
        stats_file = logs_dir / "stats" / f"{rank:05d}.json"
        if not stats_file.exists():
            raise LedgerError(f"stage {stage!r}: rank {rank} has no stats ({stats_file}); it did not complete")
        stats.append(json.loads(stats_file.read_text()))
    return stats


def summed_stats(logs_dir: Path, tasks: int, prefix: str) -> dict[str, int]:
    """Counters whose name starts with ``prefix``, summed over steps and ranks."""
    sums: dict[str, int] = {}
    for stats in rank_stats(logs_dir, tasks):
        for step in stats:
            for key in step.get("stats", {}):
                if key.startswith(prefix):
                    sums[key] = sums.get(key, 0) + stat_total(step, key)
    return sums


def created_count(stats: list[dict]) -> int:
    return sum(stat_total(step, CREATED_COUNTER) for step in stats)


def stage_ledger(stage: str, stage_dir: Path, logs_dir: Path, tasks: int) -> list[RankLedger]:
    rows = [
        RankLedger(stage, rank, intake_count(stats), created_count(stats))
        for rank, stats in enumerate(rank_stats(logs_dir, tasks, stage))
    ]
    for path in list_kept_shards(stage_dir):
        rows[shard_rank(path)].kept += pq.read_metadata(path).num_rows
    for path in list_removed_shards(stage_dir):
        reason = path.parent.relative_to(stage_dir / "_removed").as_posix()
        removed = rows[shard_rank(path)].removed
        removed[reason] = removed.get(reason, 0) + pq.read_metadata(path).num_rows
    return rows


def check_balanced(rows: list[RankLedger]) -> None:
    broken = [r for r in rows if not r.balanced]
    if broken:
        lines = [
            f"{r.stage} rank {r.rank}: in {r.docs_in} + created {r.created} != kept {r.kept} + removed {r.removed_total} {r.removed}"
            for r in broken
        ]
        raise LedgerError("ledger does not balance, documents were lost or invented:\n  " + "\n  ".join(lines))


def ledger_rows_to_json(rows: list[RankLedger]) -> list[dict]:
    return [asdict(r) for r in rows]


def ledger_rows_from_json(items: list[dict]) -> list[RankLedger]:
    return [RankLedger(**item) for item in items]


def totals(rows: list[RankLedger]) -> dict:
    removed: dict[str, int] = {}
    for row in rows:
        for reason, n in row.removed.items():
            removed[reason] = removed.get(reason, 0) + n
    return {
        "in": sum(r.docs_in for r in rows),
        "created": sum(r.created for r in rows),
        "kept": sum(r.kept for r in rows),
        "removed": dict(sorted(removed.items())),
    }


LEDGER_SCHEMA = pa.schema(
    [
        ("stage", pa.string()),
        ("rank", pa.int64()),
        ("docs_in", pa.int64()),
        ("created", pa.int64()),
        ("kept", pa.int64()),
        ("removed", pa.int64()),
        ("removed_by_reason", pa.map_(pa.string(), pa.int64())),
        ("balanced", pa.bool_()),
    ]
)


def write_ledger_table(path: Path, rows: list[RankLedger]) -> None:
    table = pa.Table.from_pylist(
        [
            {
                "stage": r.stage,
                "rank": r.rank,
                "docs_in": r.docs_in,
                "created": r.created,
                "kept": r.kept,
                "removed": r.removed_total,
                "removed_by_reason": sorted(r.removed.items()),
                "balanced": r.balanced,
            }
            for r in rows
        ],
        schema=LEDGER_SCHEMA,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
