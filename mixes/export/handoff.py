"""`handoff.sh`: the command that launches a trainer on an export, with every path filled in.

`bash handoff.sh megatron|olmo_core [extra trainer arguments]` changes into the export directory
(all paths in the export are relative to it, so the folder can be moved or copied to a cluster),
checks what the launch needs -- the trainer's modules, triton for Megatron-LM, a CUDA device,
OLMo-core's version -- and `exec`s torchrun. When something is missing it names each missing
piece on stderr and exits 3; `CURATE_DRY_RUN=1` prints the command instead.

Both trainers train the export's batch plan (`mixes.export.batches`): the same steps of the same
global batch of the same sequence length, so the same number of tokens, which the script prints
first. The sequence length and global batch size are fixed by the export (the per-domain sequence
counts rest on them); an environment value that differs is refused (exit 2).

- Megatron-LM: `$MEGATRON_LM_PATH/pretrain_gpt.py` with `--data-args-path megatron-lm/blend.txt`,
  `--train-samples` of the plan, `--tokenizer-type HuggingFaceTokenizer --tokenizer-model tokenizer/`
  and its index cache under `$SAVE_DIR`, not in the export. `--split 100,0,0`: curate holds out
  its own validation split at tokenize; a Megatron split of a domain with under ~50 documents
  would be empty, and Megatron loops forever building it.
- OLMo-core: ships no script that reads a source-mixture YAML, so the export carries
  `olmo_core_train.py`, a launcher modelled on OLMo-core's `src/examples/llm/train.py` that builds
  the dataset from `olmo-core/mixture.yaml` (checked against OLMo-core 3.0.0).
"""

from __future__ import annotations

import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from curation.tokenizer import TokenizerInfo
from mixes.export.batches import BatchPlan

HANDOFF_SCRIPT = "handoff.sh"
OLMO_CORE_LAUNCHER = "olmo_core_train.py"
MEGATRON_SPLIT = "100,0,0"  # everything trains; the held-out split is curate's own
OLMO_CORE_MIN_MAJOR = 2  # the launcher's API (SourceMixtureList, from_src_mix)


@dataclass(frozen=True)
class HandoffPlan:
    """What the script needs; `*_path` fields are relative to the export directory."""

    export_dir: Path
    batches: BatchPlan
    tokenizer: TokenizerInfo
    tokenizer_dir: str
    megatron_blend_path: str | None = None
    olmo_mixture_path: str | None = None
    olmo_dtype: str | None = None

    def trainers(self) -> list[str]:
        trainers = []
        if self.megatron_blend_path:
            trainers.append("megatron")
        if self.olmo_mixture_path:
            trainers.append("olmo_core")
        return trainers


_HEADER = """#!/usr/bin/env bash
# Launch a trainer on the data mixture exported in this directory (written by curate).
#
#   bash handoff.sh @TRAINERS@ [extra trainer arguments...]
#
# Paths are relative to this directory; the script changes into it first. Both trainers train
# @STEPS@ steps of @GLOBAL_BATCH_SIZE@ sequences of @SEQ_LENGTH@ tokens: @TRAINED_TOKENS@ tokens.
# Environment: PYTHON (python3; the interpreter that has the trainer), NPROC_PER_NODE (1),
#   SAVE_DIR (<export>/checkpoints), MICRO_BATCH_SIZE (sequences, 4), LR, MEGATRON_LM_PATH (a
#   Megatron-LM checkout), CURATE_DRY_RUN=1 (print the command instead of checking and running it).
#   SEQ_LENGTH and GLOBAL_BATCH_SIZE are fixed by the export: re-export to change them.
set -euo pipefail

EXPORT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$EXPORT_DIR"

fixed() {  # variable, exported value, export setting: the sequence counts rest on these
  local given="${!1:-}"
  if [[ -n "$given" && "$given" != "$2" ]]; then
    echo "handoff.sh: $1=$given, but this export's per-domain sequence counts are for $1=$2; re-export with export.$3: $given" >&2
    exit 2
  fi
}
fixed SEQ_LENGTH @SEQ_LENGTH@ sequence_length
fixed GLOBAL_BATCH_SIZE @GLOBAL_BATCH_SIZE@ global_batch_size

SEQ_LENGTH=@SEQ_LENGTH@
GLOBAL_BATCH_SIZE=@GLOBAL_BATCH_SIZE@
STEPS=@STEPS@
TRAIN_SAMPLES=@TRAIN_SAMPLES@
TRAINED_TOKENS=@TRAINED_TOKENS@
VOCAB_SIZE=@VOCAB_SIZE@
EOS_ID=@EOS_ID@
MICRO_BATCH_SIZE="${MICRO_BATCH_SIZE:-4}"
NPROC_PER_NODE="${NPROC_PER_NODE:-1}"
SAVE_DIR="${SAVE_DIR:-$EXPORT_DIR/checkpoints}"
PYTHON="${PYTHON:-python3}"
DRY_RUN="${CURATE_DRY_RUN:-0}"

missing=()

probe() {  # what is missing if it fails, then a command run from / (no local folder stands in for a module)
  local what="$1" error
  shift
  if ! error="$(cd / && "$@" 2>&1 >/dev/null)"; then
    missing+=("$what${error:+ ($(tail -n 1 <<<"$error"))}")
  fi
}

require_module() {  # module, what it is for
  probe "python module '$1' for $PYTHON: $2" "$PYTHON" -c "import $1"
}

require_launch() {  # torchrun and a CUDA device, for either trainer
  require_module torch.distributed.run "torchrun (install PyTorch)"
  probe "a CUDA device: torch.cuda.is_available() is False for $PYTHON" \\
    "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
}

stop_if_missing() {
  if (( ${#missing[@]} > 0 )); then
    echo "handoff.sh: cannot launch $1; missing:" >&2
    printf '  - %s\\n' "${missing[@]}" >&2
    exit 3
  fi
}

say_plan() {
  echo "handoff.sh: $1 trains $TRAINED_TOKENS tokens: $STEPS steps of $GLOBAL_BATCH_SIZE sequences of $SEQ_LENGTH tokens" >&2
}

launch() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%q ' "$@"
    printf '\\n'
  else
    exec "$@"
  fi
}
"""

_MEGATRON = """
launch_megatron() {
  say_plan Megatron-LM
  if [[ "$DRY_RUN" != 1 ]]; then
    require_launch
    if [[ -z "${MEGATRON_LM_PATH:-}" ]]; then
      missing+=("MEGATRON_LM_PATH: set it to a Megatron-LM checkout (the folder with pretrain_gpt.py)")
    elif [[ ! -f "$MEGATRON_LM_PATH/pretrain_gpt.py" ]]; then
      missing+=("$MEGATRON_LM_PATH/pretrain_gpt.py: MEGATRON_LM_PATH is not a Megatron-LM checkout")
    else
      probe "megatron.training: pretrain_gpt.py cannot import it with $PYTHON (install Megatron-LM's requirements)" \\
        env PYTHONPATH="$MEGATRON_LM_PATH" "$PYTHON" -c "import megatron.training"
    fi
    require_module triton "Megatron-LM's fused kernels (pip install triton)"
    require_module transformers "Megatron's HuggingFaceTokenizer loads @TOKENIZER_DIR@/ with it"
    stop_if_missing Megatron-LM
  fi
  launch "$PYTHON" -m torch.distributed.run --nproc-per-node "$NPROC_PER_NODE" \\
    "${MEGATRON_LM_PATH:-\\$MEGATRON_LM_PATH}/pretrain_gpt.py" \\
    --data-args-path @BLEND_PATH@ \\
    --split @SPLIT@ \\
    --data-cache-path "$SAVE_DIR/megatron-data-cache" \\
    --tokenizer-type HuggingFaceTokenizer \\
    --tokenizer-model "$EXPORT_DIR/"@TOKENIZER_DIR@ \\
    --seq-length "$SEQ_LENGTH" --max-position-embeddings "$SEQ_LENGTH" \\
    --train-samples "$TRAIN_SAMPLES" \\
    --num-layers "${NUM_LAYERS:-12}" --hidden-size "${HIDDEN_SIZE:-768}" \\
    --num-attention-heads "${NUM_ATTENTION_HEADS:-12}" \\
    --micro-batch-size "$MICRO_BATCH_SIZE" --global-batch-size "$GLOBAL_BATCH_SIZE" \\
    --lr "${LR:-3e-4}" --min-lr "${MIN_LR:-3e-5}" --lr-decay-style cosine --lr-warmup-fraction 0.01 \\
    --weight-decay 0.1 --clip-grad 1.0 --bf16 \\
    --save "$SAVE_DIR" --load "$SAVE_DIR" --save-interval 1000 \\
    --log-interval 10 --eval-iters 0 \\
    "$@"
}
"""

_OLMO_CORE = """
launch_olmo_core() {
  say_plan OLMo-core
  if [[ "$DRY_RUN" != 1 ]]; then
    require_launch
    probe "OLMo-core >= @OLMO_CORE_MIN_MAJOR@ for $PYTHON (pip install ai2-olmo-core)" "$PYTHON" -c \\
      "import sys, importlib.metadata as m; v = m.version('ai2-olmo-core'); sys.exit(0 if int(v.split('.')[0]) >= @OLMO_CORE_MIN_MAJOR@ else 'found ' + v)"
    stop_if_missing OLMo-core
  fi
  launch "$PYTHON" -m torch.distributed.run --nproc-per-node "$NPROC_PER_NODE" @LAUNCHER@ \\
    --mixture @MIXTURE_PATH@ \\
    --token-budget "$TRAINED_TOKENS" \\
    --sequence-length "$SEQ_LENGTH" \\
    --global-batch-size "$(( GLOBAL_BATCH_SIZE * SEQ_LENGTH ))" \\
    --rank-microbatch-size "$(( MICRO_BATCH_SIZE * SEQ_LENGTH ))" \\
    --vocab-size "$VOCAB_SIZE" --eos-token-id "$EOS_ID" --dtype @OLMO_DTYPE@ \\
    --tokenizer "$EXPORT_DIR/"@TOKENIZER_DIR@ \\
    --lr "${LR:-1e-3}" \\
    --save-folder "$SAVE_DIR" --work-dir "$SAVE_DIR/dataset-cache" \\
    "$@"
}
"""

_DISPATCH_CASE = """  @TRAINER@)
    shift
    launch_@TRAINER@ "$@"
    ;;
"""

_DISPATCH = """
case "${1:-}" in
@CASES@  *)
    echo "usage: bash handoff.sh @TRAINERS@ [extra trainer arguments...]" >&2
    exit 2
    ;;
esac
"""

OLMO_CORE_TRAIN_PY = '''"""Train a language model with OLMo-core on the source mixture of a curate export.

Written by curate next to handoff.sh, which runs it under torchrun from the export directory.
It follows OLMo-core's example `src/examples/llm/train.py`, but takes the dataset from the
source-mixture YAML (relative paths resolve against the export directory) and the tokenizer ids
from the export.
"""

import argparse

from olmo_core.config import DType
from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDatasetConfig, TokenizerConfig
from olmo_core.data.source_mixture import SourceMixtureDatasetConfig, SourceMixtureList
from olmo_core.data.types import NumpyDatasetDType
from olmo_core.distributed.parallel import DataParallelType
from olmo_core.nn.transformer import TransformerConfig
from olmo_core.optim import AdamWConfig, CosWithWarmup
from olmo_core.train import (
    Duration,
    TrainerConfig,
    prepare_training_environment,
    teardown_training_environment,
)
from olmo_core.train.callbacks import CheckpointerCallback
from olmo_core.train.train_module import TransformerDataParallelConfig, TransformerTrainModuleConfig
from olmo_core.utils import seed_all


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train with OLMo-core on a curate export.")
    parser.add_argument("--mixture", required=True, help="the source-mixture YAML")
    parser.add_argument("--token-budget", type=int, required=True)
    parser.add_argument("--sequence-length", type=int, required=True)
    parser.add_argument("--global-batch-size", type=int, required=True, help="tokens per step")
    parser.add_argument("--rank-microbatch-size", type=int, required=True, help="tokens")
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--eos-token-id", type=int, required=True)
    parser.add_argument("--dtype", choices=["uint16", "uint32"], required=True)
    parser.add_argument("--tokenizer", required=True, help="the exported tokenizer folder")
    parser.add_argument("--model-factory", default="llama2_271M")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-folder", required=True)
    parser.add_argument("--work-dir", required=True)
    return parser.parse_args()


def build_dataset_config(args: argparse.Namespace, tokenizer: TokenizerConfig) -> NumpyFSLDatasetConfig:
    source_list = SourceMixtureList.from_yaml(args.mixture)
    source_list.validate()
    mixture = SourceMixtureDatasetConfig(
        source_list=source_list,
        requested_tokens=args.token_budget,
        global_batch_size=args.global_batch_size,
        seed=args.seed,
    )
    return NumpyFSLDatasetConfig.from_src_mix(
        mixture,
        tokenizer=tokenizer,
        sequence_length=args.sequence_length,
        work_dir=args.work_dir,
        dtype=NumpyDatasetDType(args.dtype),
    )


def main() -> None:
    args = parse_args()
    tokenizer = TokenizerConfig(
        vocab_size=args.vocab_size,
        eos_token_id=args.eos_token_id,
        pad_token_id=args.eos_token_id,
        identifier=args.tokenizer,
    )
    dataset_config = build_dataset_config(args, tokenizer)
    model_factory = getattr(TransformerConfig, args.model_factory)
    model_config = model_factory(vocab_size=tokenizer.padded_vocab_size())
    train_module_config = TransformerTrainModuleConfig(
        rank_microbatch_size=args.rank_microbatch_size,
        max_sequence_length=args.sequence_length,
        optim=AdamWConfig(lr=args.lr),
        scheduler=CosWithWarmup(warmup_steps=100),
        dp_config=TransformerDataParallelConfig(
            name=DataParallelType.fsdp, param_dtype=DType.bfloat16, reduce_dtype=DType.float32
        ),
        max_grad_norm=1.0,
    )
    trainer_config = TrainerConfig(
        save_folder=args.save_folder,
        save_overwrite=True,
        max_duration=Duration.tokens(args.token_budget),
    ).with_callback("checkpointer", CheckpointerCallback(save_interval=1000))
    data_loader_config = NumpyDataLoaderConfig(
        global_batch_size=args.global_batch_size, seed=args.seed, num_workers=4
    )

    prepare_training_environment()
    try:
        seed_all(args.seed)
        model = model_config.build(init_device="meta")
        train_module = train_module_config.build(model)
        dataset = dataset_config.build()
        data_loader = data_loader_config.build(dataset, dp_process_group=train_module.dp_process_group)
        trainer_config.build(train_module, data_loader).fit()
    finally:
        teardown_training_environment()


if __name__ == "__main__":
    main()
'''


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    return template


def render_handoff_script(plan: HandoffPlan) -> str:
    trainers = plan.trainers()
    if not trainers:
        raise ValueError("nothing to hand off: the plan has no Megatron blend and no OLMo-core mixture")
    batches = plan.batches
    values = {
        "TRAINERS": "{" + "|".join(trainers) + "}",
        "STEPS": str(batches.steps),
        "TRAIN_SAMPLES": str(batches.total_sequences),
        "TRAINED_TOKENS": str(batches.trained_tokens),
        "GLOBAL_BATCH_SIZE": str(batches.global_batch_size),
        "SEQ_LENGTH": str(batches.sequence_length),
        "VOCAB_SIZE": str(int(plan.tokenizer.vocab_size)),
        "EOS_ID": str(int(plan.tokenizer.eos_id)),
        "TOKENIZER_DIR": shlex.quote(plan.tokenizer_dir),
        "BLEND_PATH": shlex.quote(plan.megatron_blend_path or ""),
        "SPLIT": MEGATRON_SPLIT,
        "OLMO_CORE_MIN_MAJOR": str(OLMO_CORE_MIN_MAJOR),
        "LAUNCHER": shlex.quote(OLMO_CORE_LAUNCHER),
        "MIXTURE_PATH": shlex.quote(plan.olmo_mixture_path or ""),
        "OLMO_DTYPE": shlex.quote(plan.olmo_dtype or ""),
    }
    sections = {"megatron": _MEGATRON, "olmo_core": _OLMO_CORE}
    cases = "".join(_fill(_DISPATCH_CASE, {"TRAINER": trainer}) for trainer in trainers)
    parts = [_HEADER, *(sections[trainer] for trainer in trainers), _fill(_DISPATCH, {"CASES": cases})]
    return _fill("".join(parts), values)


def write_handoff(plan: HandoffPlan) -> list[Path]:
    """Write `handoff.sh` (and the OLMo-core launcher when OLMo-core data was exported)."""
    if plan.olmo_mixture_path and plan.olmo_dtype not in ("uint16", "uint32"):
        raise ValueError(f"OLMo-core token dtype must be uint16 or uint32, got {plan.olmo_dtype!r}")
    export_dir = Path(plan.export_dir)
    script = export_dir / HANDOFF_SCRIPT
    script.write_text(render_handoff_script(plan), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    written = [script]
    if plan.olmo_mixture_path:
        launcher = export_dir / OLMO_CORE_LAUNCHER
        launcher.write_text(OLMO_CORE_TRAIN_PY, encoding="utf-8")
        written.append(launcher)
    return written
