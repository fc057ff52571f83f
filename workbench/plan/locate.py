"""Where a key is in a plan file: TOML parsers keep no positions, so this scans the text.

`toml_key_lines` maps key paths to lines; `where` turns a key path into "line N: path" using the
line of the key or of its nearest enclosing table, so every problem can point at its line.
"""

from __future__ import annotations

import re
from typing import Any, Mapping


def toml_key_lines(text: str) -> dict[str, int]:
    """Map key paths (``train.lr``, ``loss[1].params.margin``) to the 1-based line that sets them.

    TOML parsers keep no positions, so this scans the text: table headers, array-of-tables
    headers (counted), dotted keys and the keys of inline tables. Multi-line arrays and strings
    are skipped. Good enough to point a person at the right line.
    """
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix = ""
    depth = 0  # open [ or { of a value spanning lines
    in_ml_string: str | None = None
    key_re = re.compile(r'\s*((?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\'))*)\s*=')

    def parts(dotted: str) -> list[str]:
        return [p.strip().strip("\"'") for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted)]

    def table_path(names: list[str]) -> str:
        out = ""
        for n in names:
            out = f"{out}.{n}" if out else n
            if out in counts:
                out = f"{out}[{counts[out] - 1}]"
        return out

    for no, raw in enumerate(text.splitlines(), 1):
        line = raw
        if in_ml_string:
            if in_ml_string in line:
                line = line.split(in_ml_string, 1)[1]
                in_ml_string = None
            else:
                continue
        code = _strip_comment(line)
        stripped = code.strip()
        if depth == 0 and stripped.startswith("[["):
            names = parts(stripped[2:stripped.index("]]")])
            base = table_path(names[:-1])
            key = f"{base}.{names[-1]}" if base else names[-1]
            counts[key] = counts.get(key, 0) + 1
            prefix = f"{key}[{counts[key] - 1}]"
            lines.setdefault(key, no)
            lines[prefix] = no
            continue
        if depth == 0 and stripped.startswith("["):
            prefix = table_path(parts(stripped[1:stripped.index("]")]))
            lines.setdefault(prefix, no)
            continue
        if depth == 0:
            m = key_re.match(code)
            if not m:
                continue
            path = ".".join(filter(None, [prefix, *parts(m.group(1))]))
            lines.setdefault(path, no)
            value = code[m.end():]
            for q in ('"""', "'''"):
                if value.count(q) == 1:
                    in_ml_string = q
            _inline_keys(value, path, no, lines, key_re, parts)
            depth = value.count("[") + value.count("{") - value.count("]") - value.count("}")
        else:
            depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
        depth = max(depth, 0)
    return lines


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _inline_keys(value: str, path: str, no: int, lines: dict[str, int], key_re: re.Pattern[str], parts: Any) -> None:
    """Keys inside `{ ... }` on one line, nested ones included."""
    stack = [path]
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "{":
            m = key_re.match(value, i + 1)
            if m:
                stack.append(".".join([stack[-1], *parts(m.group(1))]))
                lines.setdefault(stack[-1], no)
                i = m.end()
                continue
        elif ch == "," and len(stack) > 1:
            m = key_re.match(value, i + 1)
            if m:
                stack[-1] = ".".join([stack[-2], *parts(m.group(1))])
                lines.setdefault(stack[-1], no)
                i = m.end()
                continue
        elif ch == "}" and len(stack) > 1:
            stack.pop()
        i += 1


def where(path: str, lines: Mapping[str, int]) -> str:
    """'line N: path' with the line of the key, or of its nearest enclosing table."""
    probe = path
    while probe:
        if probe in lines:
            return f"line {lines[probe]}: {path}"
        probe = probe[:probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
    return path
