"""Short stable hashes: of JSON-able data (stage identities, store keys) and of numpy arrays."""

import hashlib
import json

import numpy as np


def stable_hash(data: object) -> str:
    """A short hash of JSON-able data, independent of key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def array_hash(*arrays: np.ndarray) -> str:
    """A short hash of arrays' dtypes, shapes and contents."""
    digest = hashlib.blake2b(digest_size=8)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()
