"""Re-mixing after an evaluation task is added, against training the proxy swarm again.

Before proxies were stored, a new evaluation meant a new swarm. Now `curate proxies` scores the
stored proxies on the new task (evaluation only) and `curate mix` refits. On a run whose
tokenize stage is complete (`make demo`), this bench copies the tokenize outputs into a scratch
run (the run's own proxy store is not touched) and times, side by side:

1. the swarm trained from an empty store on the config's targets without ``--task``;
2. the same swarm after the task is added: scoring the stored proxies on it, then the mix
   stage's regression and optimum on the new objective.

It prints both and the ratio (goal: re-mixing >= 20x faster). The mix's validation proxies are
timed apart: a chosen mix that moved is a new mixture, and a new mixture is trained.

    make demo
    .venv/bin/python -m bench.remix [--run runs/demo] [-c demo/demo.yaml] [--task humaneval]
"""

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from pipelines.choose import fit_and_optimize
from pipelines.config import load_config
from pipelines.executor import dask_client
from pipelines.mixing import bounded_space, load_swarm, objective_weights, bpb_targets, run_mix, run_proxies
from pipelines.export import training_tokens
from pipelines.run import RunDir


def scratch_copy(source: RunDir, work: Path) -> RunDir:
    """The tokenize stage's outputs (shards, token files, tokenizer) and the run's benchmark files in a new run folder."""
    run = RunDir(work / source.path.name)
    shutil.copytree(source.stage_dir("tokenize"), run.stage_dir("tokenize"))
    if (source.input_dir / "benchmarks").is_dir():
        shutil.copytree(source.input_dir / "benchmarks", run.input_dir / "benchmarks")
    return run


def with_tasks(config, run: RunDir, tasks):
    proxies = config.proxies.model_copy(update={"tasks": tasks})
    where = config.run.model_copy(update={"root": str(run.path.parent), "name": run.path.name})
    return config.model_copy(update={"proxies": proxies, "run": where})


def regression_and_optimum(config, run: RunDir) -> float:
    """Seconds of the mix stage's regression and bounded optimum on the stored proxies' rows."""
    started = time.perf_counter()
    space = bounded_space(config, training_tokens(run))
    proxies = load_swarm(run, space.domains)
    fit_and_optimize(proxies, space, objective_weights(config.mix, bpb_targets(proxies)), config.mix, config.run.seed)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("-c", "--config", default="demo/demo.yaml")
    parser.add_argument("--task", default="humaneval", help="the task added after the swarm (one of proxies.tasks)")
    args = parser.parse_args()
    config = load_config(args.config)
    tasks = list(config.proxies.tasks)
    added = [task for task in tasks if task.name == args.task]
    if not added:
        raise SystemExit(f"--task {args.task}: not among proxies.tasks ({', '.join(t.name for t in tasks)})")
    work = Path(tempfile.mkdtemp(prefix="curate-remix-"))
    quiet = Console(file=io.StringIO())
    try:
        run = scratch_copy(RunDir(args.run), work)
        before, after = with_tasks(config, run, [t for t in tasks if t.name != args.task]), with_tasks(config, run, tasks)
        with dask_client(config.executor.cluster, config.executor.workers) as client:
            started = time.perf_counter()
            swarm = run_proxies(before, run, client, quiet)
            retrain = time.perf_counter() - started
            started = time.perf_counter()
            rescored = run_proxies(after, run, client, quiet)
            rescore = time.perf_counter() - started
            fit = regression_and_optimum(after, run)
            mixed = run_mix(after, run, client, quiet)
        remix = rescore + fit
        validation = mixed["validation_proxies"]
        print(f"swarm from an empty store: {swarm['trained']} proxies trained and scored in {retrain:.1f}s")
        print(f"after adding {args.task}: {rescored['scored']} stored proxies scored ({rescored['trained']} trained) in "
              f"{rescore:.1f}s + regression and optimum {fit:.1f}s = {remix:.1f}s")
        print(f"re-mix vs retrain: {retrain / remix:.1f}x faster   (goal >= 20x)")
        print(f"mix validation proxies: {validation['trained']} trained, {validation['scored']} scored, "
              f"{validation['reused']} reused; the whole mix stage took {mixed['seconds']:.1f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
