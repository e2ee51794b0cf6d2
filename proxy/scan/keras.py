"""Keras model configs (``config.json`` of ``.keras`` zips, ``model_config`` of legacy ``.h5``).

Findings: ``Lambda`` layers and serialized Python lambdas (``keras-lambda``: they carry
marshalled bytecode), and references that let a config call arbitrary Python
(``keras-unsafe-config``): ``module`` entries outside the ``keras`` namespace (CVE-2025-1550),
file-fetching utilities inside it (``get_file``, CVE-2025-8747-style gadgets), and
``TFOpLambda`` ops that reach files or Python callbacks.
"""

from __future__ import annotations

import json
import re

from .model import Context

MAX_NODES = 1 << 20
_SAFE_MODULE = re.compile(r"keras(_hub|_nlp|_cv)?(\..+)?|tf_keras(\..+)?|tensorflow\.keras(\..+)?")
_UNSAFE_FUNCTIONS = frozenset({"get_file", "load_model", "load_weights", "exec", "eval"})
_UNSAFE_TF_OP = re.compile(r"(^|\.)(io|gfile|py_function|numpy_function|py_func|raw_ops|compat)\b")


def check_config_text(ctx: Context, text: str, location: str, *, strict: bool) -> None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        if strict:
            ctx.add("keras-unsafe-config", "model config is not valid JSON", location)
        return
    check_config(ctx, doc, location)


def check_config(ctx: Context, doc: object, location: str) -> None:
    """Walk a decoded config (iteratively: configs can nest deeply) and report unsafe nodes."""
    stack: list[object] = [doc]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            ctx.add("keras-unsafe-config", "model config is too large to verify", location)
            return
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        _check_node(ctx, node, location)


def _check_node(ctx: Context, node: dict[str, object], location: str) -> None:
    class_name = node.get("class_name")
    module = node.get("module")
    config = node.get("config")
    if class_name in ("Lambda", "__lambda__"):
        ctx.add("keras-lambda", "Keras config contains a Lambda layer (serialized code)", location)
    if isinstance(module, str) and module and not _SAFE_MODULE.fullmatch(module):
        ctx.add(
            "keras-unsafe-config",
            f"Keras config references module {module[:80]} (outside keras)",
            location,
        )
    if class_name == "function" and isinstance(config, str) and config in _UNSAFE_FUNCTIONS:
        ctx.add("keras-unsafe-config", f"Keras config calls {config}", location)
    if class_name in ("TFOpLambda", "SlicingOpLambda") and isinstance(config, dict):
        function = config.get("function")
        if isinstance(function, str) and _UNSAFE_TF_OP.search(function):
            ctx.add("keras-unsafe-config", f"Keras config runs TensorFlow op {function}", location)
    if isinstance(config, dict) and config.get("function_type") == "lambda":
        ctx.add("keras-lambda", "Keras config contains serialized lambda code", location)
