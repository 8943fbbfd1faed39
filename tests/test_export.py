"""Tokenizers, datatrove token files and the trainer exports (Megatron-LM, OLMo-core, handoff).

The Megatron `.idx/.bin` reader below is written from the format description, independently of
`mixes.export.megatron`; OLMo-core files are read with plain `numpy.memmap`.
"""

import hashlib
import json
import math
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer, TokenizedFile
from tokenizers import Tokenizer

from curation.tokenizer import (
    describe_tokenizer,
    from_tokenizer_json,
    gpt2_bpe,
    train_bpe,
)
from mixes.export import export_mixture, normalize_weights
from mixes.export.batches import largest_remainders, olmo_ratio, plan_batches
from mixes.export.megatron import write_indexed_dataset
from mixes.export.olmo_core import write_token_memmap
from mixes.export.token_files import TokenFile, open_token_files

TEXTS = {
    "web": [
        "Hello world",
        "",
        "Café déjà vu: naïve façade, 東京 and an emoji 🙂.",
        *(
            f"Paragraph {i}: the committee met on day {i} and discussed item {i * 37 % 101}.\n\n"
            f"Votes in favour: {i % 7}. Against: {(i * 3) % 5}."
            for i in range(40)
        ),
    ],
    "code": [f"def f{i}(x):\n    return x * {i} + {i ** 2}\n" for i in range(25)],
}


SEQUENCE_LENGTH, GLOBAL_BATCH_SIZE = 32, 4  # 5,000 tokens: 39 steps of 128 tokens, 4,992 trained
TRAINED = {"web": 117, "code": 39}  # the 156 sequences, 3:1


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return gpt2_bpe(tmp_path_factory.mktemp("tok") / "tokenizer.json")


@pytest.fixture(scope="module")
def expected_docs(gpt2):
    """What the tokenizer itself gives for each document, plus EOS."""
    tokenizer = Tokenizer.from_file(str(gpt2.path))
    return {
        domain: [tokenizer.encode(text).ids + [gpt2.eos_id] for text in texts]
        for domain, texts in TEXTS.items()
    }


def run_document_tokenizer(texts, tokenizer_path, eos_token, out_dir: Path, logs: Path, **kwargs):
    documents = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
    step = DocumentTokenizer(
        output_folder=str(out_dir),
        tokenizer_name_or_path=str(tokenizer_path),
        eos_token=eos_token,
        **kwargs,
    )
    LocalPipelineExecutor(pipeline=[documents, step], tasks=1, workers=1, logging_dir=str(logs)).run()


@pytest.fixture(scope="module")
def token_dirs(gpt2, tmp_path_factory):
    """Real datatrove token files, one folder per domain, documents in input order."""
    root = tmp_path_factory.mktemp("tokens")
    dirs = {}
    for domain, texts in TEXTS.items():
        dirs[domain] = root / domain
        run_document_tokenizer(
            texts,
            gpt2.path,
            gpt2.eos_token,
            dirs[domain],
            root / f"logs_{domain}",
            shuffle_documents=False,
            save_loss_metadata=True,
        )
    return dirs


@pytest.fixture(scope="module")
def export(gpt2, token_dirs, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export")
    manifest = export_mixture(
        token_dirs,
        {"web": 3.0, "code": 1.0},
        token_budget=5_000,
        tokenizer_info=gpt2,
        out_dir=out_dir,
        lineage={"run_dir": "/runs/test", "config_hash": "abc123"},
        sequence_length=SEQUENCE_LENGTH,
        global_batch_size=GLOBAL_BATCH_SIZE,
        max_repetition_ratio={"web": 4.0, "code": 8.0},
    )
    return out_dir, manifest


def read_megatron(prefix: Path) -> tuple[int, list[np.ndarray]]:
    """Independent reader of a Megatron-LM MMIDIDX indexed dataset: (dtype code, documents)."""
    idx = prefix.with_name(prefix.name + ".idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    (dtype_code,) = struct.unpack_from("<B", idx, 17)
    sequence_count, document_count = struct.unpack_from("<QQ", idx, 18)
    assert version == 1
    offset = 34
    lengths = np.frombuffer(idx, dtype="<i4", count=sequence_count, offset=offset)
    offset += 4 * sequence_count
    pointers = np.frombuffer(idx, dtype="<i8", count=sequence_count, offset=offset)
    offset += 8 * sequence_count
    document_indices = np.frombuffer(idx, dtype="<i8", count=document_count, offset=offset)
    offset += 8 * document_count
    assert offset == len(idx)
    assert document_indices.tolist() == list(range(sequence_count + 1))
    dtype = np.dtype({8: "<u2", 4: "<i4"}[dtype_code])
    data = prefix.with_name(prefix.name + ".bin").read_bytes()
    assert len(data) == int(lengths.sum()) * dtype.itemsize
    documents = [
        np.frombuffer(data, dtype=dtype, count=int(length), offset=int(pointer))
        for pointer, length in zip(pointers, lengths)
    ]
    return dtype_code, documents


# --- tokenizers ---------------------------------------------------------------------------------


def test_gpt2_bpe_encodes_as_gpt2(gpt2):
    tokenizer = Tokenizer.from_file(str(gpt2.path))
    assert tokenizer.encode("Hello world").ids == [15496, 995]
    assert tokenizer.encode(" it's  a test\n\n").ids == [340, 338, 220, 257, 1332, 628]
    assert tokenizer.encode("<|endoftext|>").ids == [50256]
    assert (gpt2.vocab_size, gpt2.eos_token, gpt2.eos_id) == (50257, "<|endoftext|>", 50256)
    assert gpt2.sha256 == sha256(gpt2.path)
    text = TEXTS["web"][2]
    assert tokenizer.decode(tokenizer.encode(text).ids) == text


def test_trained_bpe_is_deterministic_and_round_trips(tmp_path):
    texts = [text for domain in TEXTS.values() for text in domain]
    first = train_bpe(texts, vocab_size=400, out_path=tmp_path / "a" / "tokenizer.json")
    second = train_bpe(texts, vocab_size=400, out_path=tmp_path / "b" / "tokenizer.json")
    assert first.sha256 == second.sha256
    assert (first.eos_token, first.eos_id) == ("<|endoftext|>", 0)
    assert 257 < first.vocab_size <= 400
    tokenizer = first.load()
    for text in (TEXTS["web"][2], TEXTS["code"][3], "unseen: ŽŸ ∑ 🙂"):
        assert tokenizer.decode(tokenizer.encode(text).ids) == text
    with pytest.raises(ValueError, match="at least 257"):
        train_bpe(texts, vocab_size=100, out_path=tmp_path / "c" / "tokenizer.json")


def test_local_tokenizer_json_is_copied_and_checked(gpt2, tmp_path):
    info = from_tokenizer_json(gpt2.path, tmp_path / "copy" / "tokenizer.json")
    assert (info.sha256, info.vocab_size, info.eos_id) == (gpt2.sha256, gpt2.vocab_size, gpt2.eos_id)
    with pytest.raises(ValueError, match="'</s>' is not in the vocabulary"):
        describe_tokenizer(gpt2.path, eos_token="</s>")


# --- datatrove token files -----------------------------------------------------------------------


def test_datatrove_token_files_read_back_per_document(gpt2, token_dirs, expected_docs):
    for domain, expected in expected_docs.items():
        files = open_token_files(token_dirs[domain], gpt2.vocab_size)
        assert [f.path.name for f in files] == ["00000_unshuffled.ds"]
        token_file = files[0]
        assert token_file.dtype == np.dtype("<u2")
        assert [doc.tolist() for doc in token_file] == expected
        assert token_file.documents_missing_eos(gpt2.eos_id) == 0
        assert token_file.has_loss_mask
        assert all(token_file.loss_mask(i).all() and len(token_file.loss_mask(i)) == len(doc)
                   for i, doc in enumerate(expected))


def test_token_file_reads_uint32_ids_and_rejects_the_wrong_vocab(tmp_path):
    documents = [[70_000, 5, 99_999], [1, 2], [99_999]]
    writer = TokenizedFile(str(tmp_path), "big.ds", token_size=4)
    for document in documents:
        writer.write(document, None)
    writer.close()
    token_file = TokenFile(tmp_path / "big.ds", vocab_size=100_000)
    assert token_file.dtype == np.dtype("<u4")
    assert [doc.tolist() for doc in token_file] == documents
    assert token_file.documents_missing_eos(99_999) == 1
    with pytest.raises(ValueError, match="wrong tokenizer"):
        TokenFile(tmp_path / "big.ds", vocab_size=50_000)


# --- trainer formats -----------------------------------------------------------------------------


def test_megatron_datasets_hold_the_tokenizer_output(export, expected_docs):
    out_dir, manifest = export
    for domain, expected in expected_docs.items():
        dtype_code, documents = read_megatron(out_dir / "megatron-lm" / domain)
        assert dtype_code == 8  # uint16 for GPT-2's 50,257 ids
        assert [doc.tolist() for doc in documents] == expected


def test_megatron_uses_int32_for_large_vocabularies(tmp_path):
    documents = [[70_000, 1, 99_999], [65_600, 99_999]]
    dataset = write_indexed_dataset(tmp_path / "big", documents, vocab_size=100_000)
    dtype_code, read = read_megatron(tmp_path / "big")
    assert dtype_code == 4
    assert [doc.tolist() for doc in read] == documents
    assert (dataset.num_documents, dataset.num_tokens) == (2, 5)
    with pytest.raises(ValueError, match="outside a vocabulary of 1000"):
        write_indexed_dataset(tmp_path / "bad", documents, vocab_size=1000)


def test_megatron_blend_file_weights_sum_to_one(export):
    out_dir, _ = export
    fields = (out_dir / "megatron-lm" / "blend.txt").read_text().split()
    weights = dict(zip(fields[1::2], map(float, fields[0::2])))
    assert weights == pytest.approx({"megatron-lm/web": 0.75, "megatron-lm/code": 0.25})
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-12)
    for prefix in weights:
        assert (out_dir / f"{prefix}.bin").is_file() and (out_dir / f"{prefix}.idx").is_file()


def test_olmo_core_memmaps_hold_the_tokenizer_output_cut_at_the_last_whole_sequence(export, expected_docs):
    out_dir, _ = export
    for domain, expected in expected_docs.items():
        tokens = np.memmap(out_dir / "olmo-core" / f"{domain}.npy", dtype=np.uint16, mode="r")
        stream = [token for doc in expected for token in doc]
        whole = len(stream) // SEQUENCE_LENGTH * SEQUENCE_LENGTH
        assert len(tokens) == whole and tokens.tolist() == stream[:whole]


def test_olmo_core_memmap_is_uint32_for_large_vocabularies(tmp_path):
    chunks = [np.array([70_000, 3]), np.array([99_999])]
    written = write_token_memmap(tmp_path / "big.npy", chunks, vocab_size=100_000)
    assert written == 3
    assert np.memmap(tmp_path / "big.npy", dtype=np.uint32, mode="r").tolist() == [70_000, 3, 99_999]


def test_olmo_core_mixture_yaml(export):
    out_dir, _ = export
    mixture = yaml.safe_load((out_dir / "olmo-core" / "mixture.yaml").read_text())
    sources = {source["source_name"]: source for source in mixture["sources"]}
    assert math.isclose(sum(source["target_ratio"] for source in sources.values()), 1.0, abs_tol=1e-12)
    assert sources["web"]["target_ratio"] == pytest.approx(0.75)
    assert sources["code"] == {
        "source_name": "code",
        "target_ratio": pytest.approx(0.25),
        "paths": ["olmo-core/code.npy"],
        "max_repetition_ratio": 8.0,
    }
    assert all((out_dir / path).is_file() for source in sources.values() for path in source["paths"])


def test_too_few_tokens_for_a_share_names_the_source(gpt2, token_dirs, expected_docs, tmp_path):
    code_tokens = sum(len(doc) for doc in expected_docs["code"]) // 8 * 8  # in whole sequences of 8
    budget = 4 * code_tokens + 32  # code's 25% share needs one sequence more than code has
    with pytest.raises(ValueError, match="source 'code' has too few tokens"):
        export_mixture(
            token_dirs, {"web": 3, "code": 1}, budget, gpt2, tmp_path / "out", {},
            sequence_length=8, global_batch_size=1, max_repetition_ratio={"web": 100.0, "code": 1.0},
        )
    assert not (tmp_path / "out").exists()  # refused before writing anything


def test_a_budget_under_one_batch_is_refused_and_a_weight_under_one_sequence_is_named(gpt2, token_dirs, tmp_path):
    with pytest.raises(ValueError, match="less than one global batch of 4 sequences of 32 tokens"):
        export_mixture(token_dirs, {"web": 1}, 127, gpt2, tmp_path / "out", {}, sequence_length=32, global_batch_size=4)
    assert not (tmp_path / "out").exists()
    manifest = export_mixture(token_dirs, {"web": 99, "code": 1}, 256, gpt2, tmp_path / "out", {}, sequence_length=32, global_batch_size=4)
    assert manifest["rounded_out_domains"] == {"code": 0.01} and list(manifest["domains"]) == ["web"]
    assert manifest["domains"]["web"]["sequences"] == 8 and not (tmp_path / "out" / "olmo-core" / "code.npy").exists()


def test_sequences_are_split_by_largest_remainders():
    assert largest_remainders({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainders({"a": 0.7, "b": 0.2, "c": 0.1}, 7) == {"a": 5, "b": 1, "c": 1}
    plan = plan_batches({"a": 0.5, "b": 0.3, "c": 0.2}, 1_000_003, 2048, 8)
    assert (plan.steps, plan.trained_tokens, plan.sequences) == (61, 999_424, {"a": 244, "b": 146, "c": 98})
    for domain, count in plan.sequences.items():  # OLMo-core takes int(budget * ratio) tokens
        assert int(plan.trained_tokens * olmo_ratio(count, plan)) == count * 2048


def test_manifest_records_epochs_files_tokenizer_and_lineage(export, expected_docs, gpt2):
    out_dir, manifest = export
    assert json.loads((out_dir / "manifest.json").read_text()) == manifest
    assert manifest["batches"] == {
        "requested_tokens": 5_000, "trained_tokens": 4_992, "sequence_length": 32, "global_batch_size": 4,
        "steps": 39, "sequences": 156,
    }
    assert manifest["token_budget"] == 4_992
    for domain, weight in {"web": 0.75, "code": 0.25}.items():
        tokens = sum(len(doc) for doc in expected_docs[domain])
        record = manifest["domains"][domain]
        assert (record["tokens"], record["documents"]) == (tokens, len(expected_docs[domain]))
        assert record["weight"] == pytest.approx(weight) and record["share"] == TRAINED[domain] / 156
        assert (record["sequences"], record["trained_tokens"]) == (TRAINED[domain], TRAINED[domain] * 32)
        assert record["epochs"] == pytest.approx(TRAINED[domain] * 32 / tokens)
    assert manifest["tokenizer"] == {**gpt2.to_dict(), "exported_dir": "tokenizer"}
    assert manifest["lineage"] == {"run_dir": "/runs/test", "config_hash": "abc123"}
    paths = {record["path"] for record in manifest["files"]}
    assert {
        "megatron-lm/web.bin", "megatron-lm/code.idx", "megatron-lm/blend.txt",
        "olmo-core/web.npy", "olmo-core/mixture.yaml",
        "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json",
        "handoff.sh", "olmo_core_train.py",
    } <= paths
    for record in manifest["files"]:
        assert record["sha256"] == sha256(out_dir / record["path"])
    assert sha256(out_dir / "tokenizer" / "tokenizer.json") == gpt2.sha256
    config = json.loads((out_dir / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|endoftext|>"


def test_weights_are_validated():
    assert normalize_weights({"a": 2, "b": 6}, ["a", "b", "c"]) == {"a": 0.25, "b": 0.75, "c": 0.0}
    with pytest.raises(ValueError, match="unknown domains \\['x'\\]"):
        normalize_weights({"x": 1}, ["a"])
    with pytest.raises(ValueError, match="'a' must be a finite non-negative"):
        normalize_weights({"a": -1}, ["a"])
    with pytest.raises(ValueError, match="'a' must be a finite non-negative"):
        normalize_weights({"a": float("nan")}, ["a"])
    with pytest.raises(ValueError, match="all domain weights are zero"):
        normalize_weights({"a": 0, "b": 0.0}, ["a", "b"])


def test_reexport_replaces_only_what_an_export_writes(gpt2, token_dirs, tmp_path):
    out = tmp_path / "out"
    geometry = {"sequence_length": 32, "global_batch_size": 4}
    export_mixture(token_dirs, {"web": 1, "code": 1}, 1_000, gpt2, out, {}, max_repetition_ratio=10.0, **geometry)
    (out / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        export_mixture(token_dirs, {"web": 1}, 1_000, gpt2, out, {}, **geometry)
    manifest = export_mixture(
        token_dirs, {"web": 1, "code": 0}, 1_000, gpt2, out, {}, formats=("megatron",), overwrite=True, **geometry
    )
    assert (manifest["formats"], list(manifest["domains"]), manifest["excluded_domains"]) == (
        ["megatron"], ["web"], ["code"]
    )
    assert (out / "megatron-lm" / "blend.txt").read_text() == "1.0 megatron-lm/web\n"
    assert not (out / "megatron-lm" / "code.bin").exists()
    assert not (out / "olmo-core").exists() and not (out / "olmo_core_train.py").exists()
    assert (out / "notes.txt").read_text() == "keep"
    usage = run_handoff(out, "olmo_core")
    assert usage.returncode == 2 and "{megatron}" in usage.stderr


def test_token_files_without_eos_are_refused(gpt2, tmp_path):
    writer = TokenizedFile(str(tmp_path / "tokens"), "00000_unshuffled.ds", token_size=2)
    writer.write([15496, 995], None)
    writer.close()
    with pytest.raises(ValueError, match="do not end with EOS id 50256"):
        export_mixture({"web": tmp_path / "tokens"}, {"web": 1}, 10, gpt2, tmp_path / "out", {}, sequence_length=2, global_batch_size=1)


# --- handoff -------------------------------------------------------------------------------------


def run_handoff(out_dir: Path, trainer: str, **env) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        ["bash", str(out_dir / "handoff.sh"), trainer],
        env={**base, **env}, capture_output=True, text=True, timeout=60, cwd="/",
    )


def test_handoff_without_megatron_names_what_is_missing(export):
    out_dir, _ = export
    result = run_handoff(out_dir, "megatron", PYTHON="false")
    assert result.returncode == 3
    for missing in ("torchrun", "a CUDA device", "MEGATRON_LM_PATH", "triton", "transformers"):
        assert missing in result.stderr
    checkout = out_dir / "no-megatron"  # a folder with pretrain_gpt.py whose megatron.training cannot be imported
    checkout.mkdir(exist_ok=True)
    (checkout / "pretrain_gpt.py").write_text("")
    result = run_handoff(out_dir, "megatron", PYTHON=sys.executable, MEGATRON_LM_PATH=str(checkout))
    assert "megatron.training: pretrain_gpt.py cannot import it" in result.stderr
    assert "No module named 'megatron" in result.stderr


def test_handoff_without_olmo_core_names_what_is_missing(export):
    out_dir, _ = export
    result = run_handoff(out_dir, "olmo_core", PYTHON="false")
    assert result.returncode == 3
    assert "OLMo-core >= 2" in result.stderr and "ai2-olmo-core" in result.stderr and "a CUDA device" in result.stderr


def test_handoff_refuses_a_sequence_length_or_batch_the_export_was_not_cut_for(export):
    out_dir, _ = export
    for variable, setting in (("SEQ_LENGTH", "sequence_length"), ("GLOBAL_BATCH_SIZE", "global_batch_size")):
        result = run_handoff(out_dir, "olmo_core", CURATE_DRY_RUN="1", **{variable: "64"})
        assert result.returncode == 2 and f"re-export with export.{setting}: 64" in result.stderr


def flag_values(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return {word: value for word, value in zip(words, words[1:]) if word.startswith("--")}


def test_handoff_commands_point_at_the_export(export):
    out_dir, _ = export
    megatron = run_handoff(out_dir, "megatron", CURATE_DRY_RUN="1", MEGATRON_LM_PATH="/opt/Megatron-LM")
    assert megatron.returncode == 0, megatron.stderr
    assert shlex.split(megatron.stdout)[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node"]
    assert "/opt/Megatron-LM/pretrain_gpt.py" in shlex.split(megatron.stdout)
    assert flag_values(megatron.stdout).items() >= {
        "--data-args-path": "megatron-lm/blend.txt",
        "--split": "100,0,0",
        "--data-cache-path": f"{out_dir}/checkpoints/megatron-data-cache",
        "--tokenizer-type": "HuggingFaceTokenizer",
        "--tokenizer-model": f"{out_dir}/tokenizer",
        "--seq-length": "32",
        "--global-batch-size": "4",
        "--train-samples": "156",  # 39 steps of 4
    }.items()
    trains = "trains 4992 tokens: 39 steps of 4 sequences of 32 tokens"
    assert f"Megatron-LM {trains}" in megatron.stderr
    olmo = run_handoff(out_dir, "olmo_core", CURATE_DRY_RUN="1")
    assert olmo.returncode == 0, olmo.stderr
    assert "olmo_core_train.py" in shlex.split(olmo.stdout)
    assert f"OLMo-core {trains}" in olmo.stderr
    assert flag_values(olmo.stdout).items() >= {
        "--mixture": "olmo-core/mixture.yaml",
        "--token-budget": "4992",
        "--global-batch-size": "128",
        "--vocab-size": "50257",
        "--eos-token-id": "50256",
        "--dtype": "uint16",
    }.items()
    usage = run_handoff(out_dir, "nemo")
    assert usage.returncode == 2 and "usage" in usage.stderr
    launcher = subprocess.run([sys.executable, "olmo_core_train.py", "--help"], cwd=out_dir, capture_output=True, text=True, timeout=120)
    assert launcher.returncode == 0 and "--mixture" in launcher.stdout, launcher.stderr[-2000:]  # imports OLMo-core 3.0.0


def test_a_domain_folder_does_not_take_the_files_of_a_domain_below_it(tmp_path):
    from mixes.export.token_files import find_token_files
    from pipelines.export import export_name
    from pipelines.run import RunDir

    run = RunDir(tmp_path)
    for domain in ("synthetic", "synthetic/qa"):
        run.token_dir("train", domain).mkdir(parents=True)
        (run.token_dir("train", domain) / "00000.ds").write_bytes(b"")
    assert find_token_files(run.token_dir("train", "synthetic")) == [run.token_dir("train", "synthetic") / "00000.ds"]
    assert run.token_dir("train", "../etc") == run.token_root / "train" / "etc"
    assert export_name("synthetic/qa") == "synthetic-qa" and export_name("../etc") == "etc"


# --- the trainers' own data loaders ----------------------------------------------------------------

LOADER_TIMEOUT_S = 300  # Megatron loops forever on an empty split: a hang must fail, not stall


def draw_samples(out_dir: Path, trainer: str, flags: dict[str, str], tmp_path: Path) -> dict[str, np.ndarray]:
    """Every sample the trainer's loader gives for ``flags`` (handoff.sh's), drawn in a subprocess."""
    out = tmp_path / f"{trainer}.npz"
    command = [sys.executable, "-m", "tests.trainer_loaders", trainer, str(out_dir), str(out)]
    command += [word for flag, value in flags.items() for word in (flag, value)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=LOADER_TIMEOUT_S, cwd=Path(__file__).parent.parent)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{trainer}'s data loader did not finish building the export's dataset within {LOADER_TIMEOUT_S}s")
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


def handoff_flags(out_dir: Path, trainer: str, names: tuple[str, ...]) -> dict[str, str]:
    dry = run_handoff(out_dir, trainer, CURATE_DRY_RUN="1", MEGATRON_LM_PATH="/opt/Megatron-LM")
    assert dry.returncode == 0, dry.stderr
    flags = flag_values(dry.stdout)
    return {name: flags[name] for name in names}


def assert_eos_at_document_ends(window: np.ndarray, ends: set[int], start: int, eos: int) -> None:
    found = {start + int(at) for at in np.flatnonzero(window == eos)}
    assert found == {end for end in ends if start <= end < start + len(window)}


def test_megatron_builds_the_blend_of_small_domains_and_samples_the_exported_counts(export, expected_docs, tmp_path):
    out_dir, manifest = export
    assert all(manifest["domains"][domain]["documents"] < 50 for domain in TRAINED)  # what 99,1,0 hung on
    flags = handoff_flags(out_dir, "megatron", (
        "--data-args-path", "--split", "--data-cache-path", "--seq-length", "--global-batch-size", "--train-samples", "--eval-iters",
    ))
    drawn = draw_samples(out_dir, "megatron", flags, tmp_path)
    domains = [prefix.removeprefix("megatron-lm/") for prefix in drawn["prefixes"]]
    counts = np.bincount(drawn["dataset_index"], minlength=len(domains))
    assert dict(zip(domains, counts.tolist())) == TRAINED and not drawn["splits_built"].any()
    for domain, count in TRAINED.items():
        assert abs(count / 156 - manifest["domains"][domain]["weight"]) <= 0.005
    eos = manifest["tokenizer"]["eos_id"]
    for window, number, sample in zip(drawn["windows"], drawn["dataset_index"], drawn["dataset_sample_index"]):
        documents = expected_docs[domains[number]]
        shuffled = drawn[f"shuffle_index_{number}"][sample]
        (first, offset), (last, _) = drawn[f"sample_index_{number}"][shuffled : shuffled + 2]
        ids = drawn[f"document_index_{number}"][first : last + 1]
        stream = np.concatenate([documents[i] for i in ids])
        assert np.array_equal(window, stream[offset : offset + SEQUENCE_LENGTH + 1])
        assert_eos_at_document_ends(window, set((np.cumsum([len(documents[i]) for i in ids]) - 1).tolist()), offset, eos)
    assert (out_dir / "checkpoints" / "megatron-data-cache").is_dir()  # the index cache: outside the data folders
    assert not any(path.is_dir() for path in (out_dir / "megatron-lm").iterdir())


def test_olmo_core_builds_the_mixture_and_samples_the_exported_counts(export, expected_docs, tmp_path):
    out_dir, manifest = export
    flags = handoff_flags(out_dir, "olmo_core", ("--mixture", "--token-budget", "--sequence-length", "--global-batch-size", "--dtype"))
    drawn = draw_samples(out_dir, "olmo_core", flags, tmp_path)
    assert len(drawn["instances"]) * SEQUENCE_LENGTH == int(flags["--token-budget"]) == 4_992
    assert dict(zip(*np.unique(drawn["sources"], return_counts=True))) == TRAINED
    assert drawn["batches"].tolist() == [39, 39]  # whole global batches, every one drawn
    eos = manifest["tokenizer"]["eos_id"]
    for instance, domain, local in zip(drawn["instances"], drawn["sources"], drawn["local"]):
        documents = expected_docs[str(domain)]
        stream = np.concatenate(documents)
        start = int(local) * SEQUENCE_LENGTH
        assert np.array_equal(instance, stream[start : start + SEQUENCE_LENGTH])
        assert_eos_at_document_ends(instance, set((np.cumsum([len(d) for d in documents]) - 1).tolist()), start, eos)
