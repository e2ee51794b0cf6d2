"""Model-like file names: where content the scanner does not recognise is a finding.

Formats are identified by content, never by name.  But a file whose *name* says it is a
serialised model or array (``pytorch_model.bin``, ``clf.joblib``) is opened by a loader that may
execute it, so content the scanner could not identify there is not "clean": it is a finding
(fail closed).  Other files (``README.md``, ``config.json``, images) keep the content verdict.

The rule needs the name, and verdicts are cached per digest (the same bytes can be published
under several names), so it is applied on top of the cached content verdict, per name.
"""

from __future__ import annotations

from .model import Finding

RULE = "unrecognised"

MODEL_SUFFIXES = frozenset(
    {
        # pickle family (pickle, joblib, dill, cloudpickle, scikit-learn, gensim)
        ".pkl", ".pickle", ".pk", ".joblib", ".jbl", ".dill", ".sav", ".cloudpickle",
        # PyTorch and friends (zip or legacy pickle checkpoints, TorchScript, TorchServe)
        ".bin", ".pt", ".pth", ".ckpt", ".pt2", ".ptl", ".mar", ".nemo",
        # arrays and weights
        ".npy", ".npz", ".h5", ".hdf5", ".keras", ".safetensors", ".gguf", ".ggml",
        # protobuf (TF GraphDef/SavedModel, ONNX, SentencePiece) and msgpack (Flax)
        ".pb", ".onnx", ".model", ".msgpack",
    }
)  # fmt: skip
"""Suffixes of files a model loader deserialises (lower case)."""

COMPRESSION_SUFFIXES = frozenset({".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4", ".zst"})
"""Suffixes joblib and others add to a compressed dump (``model.pkl.gz``, ``clf.joblib.xz``)."""

_BARE_WRAPPERS = frozenset({"gzip", "bz2", "xz", "lzma", "zlib", "joblib-zf"})
"""A wrapper format with no inner format: what it holds was not recognised."""


def model_like(name: str) -> bool:
    """Whether ``name`` (a path; only its last component counts) names a serialised model."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        return False
    if f".{suffix}" in COMPRESSION_SUFFIXES:
        stem, dot, suffix = stem.rpartition(".")
        if not dot or not stem:
            return False
    return f".{suffix}" in MODEL_SUFFIXES


def unrecognised(fmt: str) -> bool:
    """Whether a scan's format says its content (or a wrapper's content) was not identified.

    ``other`` (text) counts too: no loader of a model-like name reads plain text that the
    pickle walker could not parse.
    """
    return fmt in _BARE_WRAPPERS or fmt.rsplit("+", 1)[-1] in ("unknown", "other")


def finding(fmt: str, name: str, location: str = "") -> Finding | None:
    """The finding for content of format ``fmt`` under ``name``, or ``None``."""
    if not (model_like(name) and unrecognised(fmt)):
        return None
    what = "text" if fmt.endswith("other") else "unrecognised content"
    return Finding(
        RULE,
        f"{what} in a model file (format {fmt}): no scanner can vouch for what a loader "
        "would do with it; blocked fail-closed",
        location,
    )
