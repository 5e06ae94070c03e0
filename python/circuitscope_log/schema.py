"""The shared event schema (``events.schema.json``, also read by circuitscope's Rust tests) and a
checker for one event line against it. Stdlib only. It only checks: it never changes an event.
"""

import json
import os

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "events.schema.json")

with open(SCHEMA_PATH, encoding="utf-8") as _f:
    SCHEMA = json.load(_f)

VERSION = SCHEMA["version"]


def _split_union(t):
    # `enum(a,b)` holds no `|`; unions split on `|` at the top level only.
    out, depth, cur = [], 0, ""
    for ch in t:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "|" and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _check_type(value, t, where):
    """An error message, or None when ``value`` has type ``t``."""
    errors = []
    for alt in _split_union(t):
        e = _check_one(value, alt, where)
        if e is None:
            return None
        errors.append(e)
    return errors[0] if len(errors) == 1 else f"{where}: {value!r} is none of {t}"


def _check_one(value, t, where):
    if t == "any":
        return None
    if t == "null":
        return None if value is None else f"{where}: expected null, got {value!r}"
    if t == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{where}: expected an integer, got {value!r}"
    if t == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, float) and value != value:
            return f"{where}: NaN is not JSON"
        return None if ok else f"{where}: expected a number, got {value!r}"
    if t == "string":
        return None if isinstance(value, str) else f"{where}: expected a string, got {value!r}"
    if t == "boolean":
        return None if isinstance(value, bool) else f"{where}: expected a boolean, got {value!r}"
    if t == "object":
        return None if isinstance(value, dict) else f"{where}: expected an object, got {value!r}"
    if t.startswith("enum(") and t.endswith(")"):
        options = t[5:-1].split(",")
        return None if value in options else f"{where}: {value!r} is not one of {options}"
    if t.startswith("array<") and t.endswith(">"):
        if not isinstance(value, list):
            return f"{where}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            e = _check_type(item, t[6:-1], f"{where}[{i}]")
            if e:
                return e
        return None
    if t.startswith("ref:"):
        return check_fields(value, SCHEMA["definitions"][t[4:]], where)
    raise ValueError(f"events.schema.json: unknown type {t!r}")


def check_fields(obj, fields, where):
    """An error message, or None when ``obj`` has exactly ``fields`` (optional ones may be
    absent)."""
    if not isinstance(obj, dict):
        return f"{where}: expected an object, got {obj!r}"
    for name, t in fields.items():
        optional = t.endswith("?")
        t = t.rstrip("?")
        if name not in obj:
            if optional:
                continue
            return f"{where}: missing field `{name}`"
        e = _check_type(obj[name], t, f"{where}.{name}")
        if e:
            return e
    extra = sorted(set(obj) - set(fields))
    if extra:
        return f"{where}: unknown field(s) {extra}"
    return None


def check_event(event):
    """An error message, or None when ``event`` (a parsed line) is a valid event."""
    if not isinstance(event, dict):
        return "an event is a JSON object"
    kind = event.get("kind")
    if kind not in SCHEMA["kinds"]:
        return f"unknown event kind {kind!r}"
    fields = dict(SCHEMA["envelope"])
    fields.update(SCHEMA["kinds"][kind])
    return check_fields(event, fields, kind)
