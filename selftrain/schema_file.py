"""Write params.schema.json: the JSON Schema of params.yaml, for editors to complete and check keys.

params.yaml's first line (``# yaml-language-server: $schema=params.schema.json``) points
the YAML language server (VS Code, Neovim, ...) at this file. It is generated from
`selftrain.params_schema.Params`, committed, and kept current by a test; after a change
to the schema, rewrite it with ``selftrain schema`` or ``python -m selftrain.schema_file``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from selftrain.atomic import write_text
from selftrain.params_schema import Params

SCHEMA_FILE = "params.schema.json"


def params_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that params.yaml must satisfy."""
    schema = TypeAdapter(Params).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "selftrain params.yaml",
    }


def write_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Write the schema to `path` (atomically); return the path."""
    path = Path(path)
    write_text(json.dumps(params_json_schema(), indent=2) + "\n", path)
    return path


if __name__ == "__main__":
    print(write_schema())
