"""Builders for the scanner's test corpus: malicious and benign files made in ``tmp_path``.

Nothing is downloaded; payloads are never executed (pickles are only ever written, and the
callables they reference are harmless to *reference*).
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

# Opcode helpers for hand-assembled pickles.
PROTO2 = b"\x80\x02"
PROTO4 = b"\x80\x04"
STOP = b"."
MEMOIZE = b"\x94"
POP = b"0"
REDUCE = b"R"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
STACK_GLOBAL = b"\x93"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def ustr(text: str) -> bytes:
    data = text.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def call(module: str, name: str, *args: str, proto: bytes = PROTO2) -> bytes:
    """``module.name(*args)`` as a pickle (string arguments only)."""
    body = b"(" + b"".join(ustr(a) for a in args) + b"t"
    return proto + glob(module, name) + body + REDUCE + STOP


class Reduce:
    """Pickles as ``func(*args)`` - a real ``__reduce__`` payload, never called here."""

    def __init__(self, func: Callable[..., object], *args: object) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return self.func, self.args


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def rezip(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    """Copy a zip, replacing the bytes of members whose name ends with a key of ``replace``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info, data)
    return dst


def safetensors_bytes(header: Mapping[str, object], data: bytes, *, pad: bool = True) -> bytes:
    raw = json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def malicious_pickle(protocol: int = 2) -> bytes:
    import os

    return pickle.dumps(Reduce(os.system, "echo pwned"), protocol=protocol)


# Jinja chat templates.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{{- bos_token }}\n{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}"
    '{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}'
    "{%- endif %}{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}'
    '{{- "Today Date: " + date_string + "\\n\\n" }}{{- system_message }}{{- "<|eot_id|>" }}'
    "{%- for message in messages %}{%- if message.tool_calls is defined %}"
    "{%- set tool_call = message.tool_calls[0].function %}"
    "{{- '{\"name\": \"' + tool_call.name + '\", ' }}"
    "{{- '\"parameters\": ' }}{{- tool_call.arguments | tojson }}{%- else %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
MISTRAL = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}"
    "{%- endif %}{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must "
    "alternate user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}"
    "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token}}"
    "{%- endif %}{%- endfor %}{# a comment mentioning __class__ is inert #}"
)
SSTI = {
    "class-mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "attr-filter": "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "split-dunder": "{% set u = '_' %}{{ ()|list|first|default(x)[u ~ u ~ 'class' ~ u ~ u] }}",
    "hex-escape": "{{ x['\\x5f\\x5fglobals\\x5f\\x5f'] }}",
    "char-format": "{% set u = '%c'|format(95) %}{{ x[u~u~'class'~u~u] }}",
    "import": "{% import 'os' as os %}{{ os.popen('id') }}",
    "sglang-cve": (
        "{% for c in [].__class__.__base__.__subclasses__() %}"
        "{% if c.__name__ == 'catch_warnings' %}"
        "{{ c()._module.__builtins__['__import__']('os').system('id') }}{% endif %}{% endfor %}"
    ),
    "private-attr": "{{ self._TemplateReference__context }}",
}

KERAS_DENSE: dict[str, object] = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {"batch_shape": [None, 4], "dtype": "float32"},
                "registered_name": None,
            },
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {
                    "units": 2,
                    "activation": "relu",
                    "kernel_initializer": {
                        "module": "keras.initializers",
                        "class_name": "GlorotUniform",
                        "config": {"seed": None},
                        "registered_name": None,
                    },
                },
                "registered_name": None,
                "build_config": {"input_shape": [None, 4]},
            },
        ],
    },
    "registered_name": None,
}


def keras_with(layer: dict[str, object]) -> dict[str, object]:
    """The benign config with one more layer appended."""
    config = json.loads(json.dumps(KERAS_DENSE))
    config["config"]["layers"].append(layer)
    return dict(config)


LAMBDA_LAYER: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "lambda",
        "function": {
            "class_name": "__lambda__",
            "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMEAAAAfABTAKkBTqkAqQHaAXhyAgAAAHIC"
            },
        },
    },
    "registered_name": None,
}
OS_FUNCTION_LAYER: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Activation",
    "config": {
        "activation": {
            "module": "os",
            "class_name": "function",
            "config": "system",
            "registered_name": None,
        }
    },
}
GET_FILE_LAYER: dict[str, object] = {
    "module": "keras.layers",
    "class_name": "Activation",
    "config": {
        "activation": {
            "module": "keras.utils",
            "class_name": "function",
            "config": "get_file",
            "registered_name": None,
        }
    },
}


def keras_zip(path: Path, config: dict[str, object], weights: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    return path
