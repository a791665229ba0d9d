import json
from typing import Any, Dict


def parse_json_object(line: str, where: str) -> Dict[str, Any]:
    """
    `line` parsed as a JSON object. Raises `ValueError` naming `where` (e.g. `file:line`) and showing the
    line if it is not JSON or not an object.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not JSON ({error.msg}, column {error.colno}): {line.strip()[:200]!r}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where} holds a JSON {type(record).__name__}, not an object: {line.strip()[:200]!r}")
    return record
