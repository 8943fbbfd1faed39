"""The first step after a stage's reader: counts what enters the stage for the ledger.

A reader that fails on part of its input (a corrupt WARC record, an undecodable page)
yields a document marked with its Drop (curation.drops); the intake sends it to the drop
ledger, so a stage's ``in`` always equals ``kept + removed``.
"""

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.drops import take_mark
from curation.shards import RemovedSink

INTAKE_COUNTER = "documents"
CREATED_COUNTER = "documents_created"  # steps that make new documents count them under this stat


class StageIntake(PipelineStep):
    name = "📥 intake"
    type = "📥 - INTAKE"

    def __init__(self, removed: RemovedSink):
        super().__init__()
        self.removed = removed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.removed:
            for doc in data:
                self.stat_update(INTAKE_COUNTER)
                drop = take_mark(doc)
                if drop is None:
                    yield doc
                    continue
                self.stat_update(f"dropped_{drop.label}")
                self.removed.write(doc, rank, drop)


INTAKE_STATS_NAME = f"{StageIntake.type}: {StageIntake.name}"  # how datatrove names the step's stats
