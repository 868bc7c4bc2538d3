"""`--set NAME=VALUE` items, as the benchmark scripts take them: VALUE is JSON (`[32,16]`, `10`, `null`)
or, where it does not parse as JSON, the text itself (`series.window=period`)."""
from __future__ import annotations

import json


def parse_assignments(items: list[str]) -> list[tuple[str, object]]:
    """[(NAME, value)] of "NAME=VALUE" items, in their order; each value JSON-decoded where it can be."""
    assignments = []
    for item in items:
        name, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        assignments.append((name, value))
    return assignments
