"""Normalise tool results and classify each (case, target) against the SDK reference.

A result is ``{"is_error": bool, "content": [blocks]}`` as posted in ``user.tool_result``,
or ``{"missing": reason}`` when no result arrived.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re

IDENTICAL = "identical"
DEVIATION = "deviation"
FAILED = "failed"


def _rewrite_strings(value: object, fn) -> object:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_rewrite_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: (v if k == "data" else _rewrite_strings(v, fn)) for k, v in value.items()}
    return value


def _apply_hints(text: str, hints: list) -> str:
    for hint in hints:
        if hint == "sort_lines":
            text = "\n".join(sorted(text.split("\n")))
        elif isinstance(hint, dict) and "replace" in hint:
            pattern, repl = hint["replace"]
            text = re.sub(pattern, repl, text)
        else:
            raise ValueError(f"unknown normalize hint {hint!r}; expected \"sort_lines\" or {{\"replace\": [re, repl]}}")
    return text


def normalize(result: dict, workdir: str, outside: str, hints: list) -> dict:
    """Replace the target's paths by placeholders and apply the case's hints to text blocks.

    Base64 ``data`` of image/document blocks is compared verbatim.
    """
    if "missing" in result:
        return result

    def paths(text: str) -> str:
        # Outside first: it starts with the workdir path (``/tmp/kcXXX-out``).
        return text.replace(outside, "<OUTSIDE>").replace(workdir, "<WORKDIR>")

    content = _rewrite_strings(result.get("content"), paths)
    if hints and isinstance(content, list):
        content = [
            dict(block, text=_apply_hints(block["text"], hints))
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            else block
            for block in content
        ]
    return {"is_error": result.get("is_error"), "content": content}


def deviation_for(case: dict, target: str) -> str | None:
    """The anchor id a case declares for ``target`` (a string applies to every target)."""
    dev = case.get("deviation")
    if isinstance(dev, str):
        return dev
    if isinstance(dev, dict):
        return dev.get(target)
    return None


def render(result: dict) -> list[str]:
    """Human-readable lines of one result, for diffs (binary data shown as size + digest)."""
    if "missing" in result:
        return [f"<no result: {result['missing']}>"]
    lines = [f"is_error={str(result.get('is_error')).lower()}"]
    for block in result.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            lines.extend(f"| {line}" for line in str(block.get("text")).split("\n"))
        elif kind in ("image", "document") and isinstance(block.get("source"), dict):
            src = block["source"]
            data = str(src.get("data", ""))
            digest = hashlib.sha256(data.encode()).hexdigest()[:12]
            lines.append(f"[{kind} {src.get('type')} {src.get('media_type')} {len(data)} chars sha256:{digest}]")
        else:
            lines.append(json.dumps(block, ensure_ascii=False))
    return lines


def short_diff(calls: list[dict], ref: list[dict], got: list[dict], max_lines: int = 14, width: int = 140) -> str:
    """A unified diff of the first differing calls, clipped for the report."""
    out: list[str] = []
    for index, call in enumerate(calls):
        a = ref[index] if index < len(ref) else {"missing": "not run"}
        b = got[index] if index < len(got) else {"missing": "not run"}
        if a == b:
            continue
        summary = json.dumps(call["input"], ensure_ascii=False)
        out.append(f"@@ call {index + 1}: {call['name']} {summary[:width - 20]}")
        diff = difflib.unified_diff(render(a), render(b), lineterm="", n=1)
        out.extend(line for line in list(diff)[2:] if not line.startswith("@@"))
    clipped = [line if len(line) <= width else line[: width - 1] + "…" for line in out[:max_lines]]
    if len(out) > max_lines:
        clipped.append(f"… {len(out) - max_lines} more diff lines")
    return "\n".join(clipped)


def classify(case: dict, target: str, same: bool, known_anchors: set[str]) -> tuple[str, str]:
    """(status, detail) of one non-reference target's results for ``case``."""
    anchor = deviation_for(case, target)
    if same:
        return IDENTICAL, ("declared deviation not observed: " + anchor) if anchor else ""
    if anchor is None:
        return FAILED, "undocumented difference"
    if anchor not in known_anchors:
        return FAILED, f"deviation '{anchor}' is not documented in docs/compat.md"
    return DEVIATION, anchor
