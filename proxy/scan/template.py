"""Jinja chat templates: flag constructs used to escape (or that only make sense outside) a
sandbox - dunder/private attribute access, ``attr`` lookups, template imports, Flask/Jinja
globals that lead to ``__globals__``, char-code string building and process/eval gadgets.

This is a lexical check of code inside ``{{ }}``/``{% %}`` (string literals are unescaped
first); it catches the published SSTI payloads (CVE-2024-34359, CVE-2026-5760) while ordinary
chat templates pass.  It is no substitute for rendering templates in a sandbox.
"""

from __future__ import annotations

import re

MAX_TEMPLATE = 1 << 20

_IDENT = re.compile(r"[A-Za-z_]\w*")
_PLACEHOLDER = re.compile(r"'(\d+)'")
_REPLACE_ARG = re.compile(r"replace\(\s*'\d+'\s*,\s*'(\d+)'")
_PICKED = re.compile(r"'\d+'\s*\[")
_SUBSCRIPT = re.compile(r"\[([^\[\]]*)\]")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3})")
_GADGETS = {
    "attr": "the attr filter (attribute lookup by computed name)",
    "import": "template import", "include": "template include", "extends": "template extends",
    "lipsum": "the lipsum global (leads to __globals__)",
    "cycler": "the cycler global (leads to __globals__)",
    "joiner": "the joiner global (leads to __globals__)",
    "self": "the template self reference", "config": "the config global",
    "request": "the request global", "url_for": "the url_for global",
    "get_flashed_messages": "the get_flashed_messages global",
    "getattr": "getattr", "setattr": "setattr", "globals": "globals", "builtins": "builtins",
    "mro": "mro", "subclasses": "subclasses", "os": "the os module", "sys": "the sys module",
    "subprocess": "subprocess", "popen": "popen", "eval": "eval",
    "exec": "exec", "compile": "compile", "open": "open()", "load_module": "load_module",
    "func_globals": "func_globals", "f_globals": "f_globals", "f_locals": "f_locals",
    "f_back": "f_back", "gi_frame": "gi_frame", "gi_code": "gi_code", "tb_frame": "tb_frame",
    "co_code": "co_code",
}  # fmt: skip


def _unescape(literal: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("N{"):
            return "?"
        return chr(int(code[1:], 16) if code[0] in "xuU" else int(code, 8))

    return _ESCAPE.sub(one, literal)


def _lex(template: str) -> tuple[list[str], list[str]]:
    """Code and string literals of every ``{{ }}``/``{% %}`` block (comments dropped)."""
    code: list[str] = []
    strings: list[str] = []
    i, n = 0, len(template)
    while True:
        j = template.find("{", i)
        if j < 0 or j + 1 >= n:
            return code, strings
        kind = template[j + 1]
        if kind == "#":
            end = template.find("#}", j + 2)
            i = n if end < 0 else end + 2
            continue
        if kind not in "{%":
            i = j + 1
            continue
        closer = "}}" if kind == "{" else "%}"
        i = j + 2
        buf: list[str] = []
        while i < n and not template.startswith(closer, i):
            ch = template[i]
            if ch in "'\"":
                k = i + 1
                while k < n and template[k] != ch:
                    k += 2 if template[k] == "\\" else 1
                buf.append(f" '{len(strings)}' ")
                strings.append(template[i + 1 : k])
                i = k + 1
            else:
                buf.append(ch)
                i += 1
        code.append("".join(buf))
        i += 2


def template_escapes(template: str) -> list[str]:
    """Reasons the template looks like a sandbox escape (empty when it looks ordinary)."""
    if len(template) > MAX_TEMPLATE:
        return [f"a template of {len(template)} characters (too large to verify)"]
    code, strings = _lex(template)
    reasons: list[str] = []
    for literal in strings:
        text = _unescape(literal)
        if "__" in text:
            reasons.append(f"the dunder string {text[:40]!r}")
        if re.search(r"%\s*c|\{[^{}]*:\s*c\}", text):
            reasons.append("char-code string formatting")
        for m in _ESCAPE.finditer(literal):
            ch = _unescape(m.group(0))
            if ch in "_." or (ch.isascii() and ch.isalnum()):
                reasons.append("escaped identifier characters in a string")
                break
    for chunk in code:
        replacements = {int(i) for i in _REPLACE_ARG.findall(chunk)}
        for m in _PLACEHOLDER.finditer(chunk):
            index = int(m.group(1))
            if index not in replacements and set(_unescape(strings[index])) == {"_"}:
                reasons.append("an underscore string (names can be built from it)")
        if _PICKED.search(chunk):
            reasons.append("characters picked out of a string literal")
        for m in _SUBSCRIPT.finditer(chunk):
            if _PLACEHOLDER.search(m.group(1)) and re.search(r"[~+%]|\bjoin\b|format", m.group(1)):
                reasons.append("a subscript with a computed string")
        for ident in _IDENT.findall(_PLACEHOLDER.sub(" ", chunk)):
            if "__" in ident:
                reasons.append(f"the dunder name {ident[:40]}")
            elif ident in _GADGETS:
                reasons.append(_GADGETS[ident])
        if re.search(r"\.\s*_", _PLACEHOLDER.sub(" ", chunk)):
            reasons.append("private attribute access")
    return list(dict.fromkeys(reasons))
