"""Draw every training sample of an export through the trainers' own data loaders.

    python -m tests.trainer_loaders megatron EXPORT OUT.npz --data-args-path ... --split ... \
        --seq-length ... --global-batch-size ... --train-samples ... --eval-iters ... --data-cache-path ...
    python -m tests.trainer_loaders olmo_core EXPORT OUT.npz --mixture ... --token-budget ... \
        --sequence-length ... --global-batch-size ... --dtype ...

The flags are the ones `handoff.sh` passes (the tests take them from its dry run). Megatron-core
0.16.1 builds `BlendedMegatronDatasetBuilder(GPTDataset, ...)` with the sizes Megatron-LM's
`pretrain_gpt.py` asks for; OLMo-core 3.0.0 builds its source-mixture dataset and data loader.
What they return is written to OUT.npz for the tests to check against the tokenizer's output.
Each loader runs in its own process: Megatron's index building can loop forever on an empty
split, in a worker thread that no alarm stops, so the tests run this under a timeout.
"""

import argparse
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np


class MegatronTokenizer:
    """What Megatron's GPT datasets read from a tokenizer: its size, EOS, and an identity for their cache."""

    def __init__(self, vocab_size: int, eod: int) -> None:
        self.vocab_size = vocab_size
        self.eod = eod
        self.unique_identifiers = OrderedDict(cls="curate-export", vocab_size=vocab_size, eod=eod)


def draw_megatron(args: argparse.Namespace, tokenizer: dict, out: Path) -> None:
    import torch.distributed as dist
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)  # the blended index cache asks for a rank
    words = Path(args.data_args_path).read_text().split()
    prefixes, weights = words[1::2], [float(weight) for weight in words[0::2]]
    config = GPTDatasetConfig(
        random_seed=1234,
        sequence_length=args.seq_length,
        blend=(prefixes, weights),
        split=args.split,
        path_to_cache=args.data_cache_path,
        tokenizer=MegatronTokenizer(tokenizer["vocab_size"], tokenizer["eos_id"]),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
    )
    batch = args.global_batch_size
    iterations = args.train_samples // batch  # Megatron-LM's update_train_iters
    sizes = [args.train_samples, (iterations // args.eval_interval + 1) * args.eval_iters * batch, args.eval_iters * batch]
    train, valid, test = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    trained = iterations * batch
    windows = []
    for index in range(trained):
        item = train[index]
        windows.append(np.concatenate([item["tokens"].numpy(), item["labels"].numpy()[-1:]]))
    arrays = {
        "windows": np.stack(windows),
        "dataset_index": np.asarray(train.dataset_index[:trained]),
        "dataset_sample_index": np.asarray(train.dataset_sample_index[:trained]),
        "prefixes": np.array(prefixes),
        "splits_built": np.array([valid is not None, test is not None]),
    }
    for number, dataset in enumerate(train.datasets):
        arrays[f"document_index_{number}"] = dataset.document_index
        arrays[f"sample_index_{number}"] = dataset.sample_index
        arrays[f"shuffle_index_{number}"] = dataset.shuffle_index
    np.savez(out, **arrays)
    dist.destroy_process_group()


def draw_olmo_core(args: argparse.Namespace, tokenizer: dict, out: Path) -> None:
    from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDatasetConfig, TokenizerConfig
    from olmo_core.data.source_mixture import SourceMixtureDatasetConfig, SourceMixtureList
    from olmo_core.data.types import NumpyDatasetDType

    work = tempfile.mkdtemp(prefix="olmo-core-work-")
    source_list = SourceMixtureList.from_yaml(args.mixture)
    source_list.validate()
    mixture = SourceMixtureDatasetConfig(
        source_list=source_list, requested_tokens=args.token_budget, global_batch_size=args.global_batch_size,
        seed=0, render_tables=False, quiet=True,
    )
    dataset = NumpyFSLDatasetConfig.from_src_mix(
        mixture,
        tokenizer=TokenizerConfig(vocab_size=tokenizer["vocab_size"], eos_token_id=tokenizer["eos_id"], pad_token_id=tokenizer["eos_id"]),
        sequence_length=args.sequence_length,
        work_dir=work,
        dtype=NumpyDatasetDType(args.dtype),
    ).build()
    dataset.prepare()
    source_of = {path: source.source_name for source in source_list.sources for path in source.paths}
    sources, local = [], []
    for (start, end), path in zip(dataset.offsets, dataset.paths):
        sources += [source_of[str(path)]] * (end - start)
        local += range(end - start)
    loader = NumpyDataLoaderConfig(global_batch_size=args.global_batch_size, seed=0, work_dir=work).build(dataset)
    loader.reshuffle(epoch=1)
    batches = sum(1 for _ in loader)
    np.savez(
        out,
        instances=np.stack([dataset[index]["input_ids"].numpy() for index in range(len(dataset))]),
        sources=np.array(sources),
        local=np.array(local),
        batches=np.array([loader.total_batches, batches]),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trainer", choices=["megatron", "olmo_core"])
    parser.add_argument("export", type=Path)
    parser.add_argument("out", type=Path)
    for flag in ("--data-args-path", "--split", "--data-cache-path", "--mixture", "--dtype"):
        parser.add_argument(flag)
    for flag in ("--seq-length", "--sequence-length", "--global-batch-size", "--train-samples", "--eval-iters", "--token-budget"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--eval-interval", type=int, default=1000)  # Megatron-LM's default
    args = parser.parse_args()
    out = args.out.resolve()
    tokenizer = json.loads((args.export / "manifest.json").read_text())["tokenizer"]
    os.chdir(args.export)  # every path in an export is relative to it
    (draw_megatron if args.trainer == "megatron" else draw_olmo_core)(args, tokenizer, out)


if __name__ == "__main__":  # OLMo-core prepares its indices in a process pool
    main()
