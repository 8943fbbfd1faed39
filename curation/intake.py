"""The first step after a stage's reader: counts what enters the stage for the ledger.

A reader that fails on part of its input (a corrupt WARC record, an undecodable page)
yields a document marked with ``error_reason``; the intake sends it to the drop ledger
with its reason and detail, so a stage's ``in`` always equals ``kept + removed``.
"""

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.documents import ERROR_DETAIL, ERROR_REASON
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
                reason = doc.metadata.pop(ERROR_REASON, None)
                if reason is None:
                    yield doc
                    continue
                self.stat_update(f"dropped_{reason}")
                self.removed.write(doc, rank, reason=reason, detail=doc.metadata.pop(ERROR_DETAIL, None))


INTAKE_STATS_NAME = f"{StageIntake.type}: {StageIntake.name}"  # how datatrove names the step's stats
