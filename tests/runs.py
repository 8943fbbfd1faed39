"""A run folder's manifest as the runner leaves it, for tests that write a stage's outputs directly."""

from pipelines.config import PipelineConfig
from pipelines.run import RunDir
from pipelines.stages import STAGES
from pipelines.state import StageGraph


def record_complete(config: PipelineConfig, name: str, kept: int) -> None:
    """Marks ``name`` and the stages above it complete and fresh for ``config``, each holding ``kept`` documents."""
    run = RunDir(config.run_dir)
    manifest = run.read_manifest()
    graph = StageGraph(config, run, STAGES, manifest)
    todo = [name]
    while todo:
        stage = STAGES[todo.pop()]
        manifest["stages"][stage.name] = graph.identity(stage.name).to_json() | {
            "state": "complete", "output_id": f"test-{stage.name}",
            "upstream_outputs": {up: f"test-{up}" for up in stage.upstream},
            "counts": {"in": kept, "created": 0, "kept": kept, "removed": {}},
        }
        todo.extend(stage.upstream)
    run.write_manifest(manifest)
