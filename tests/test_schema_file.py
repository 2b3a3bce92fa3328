"""params.schema.json: committed, current with the schema, and checking params.yaml as editors do."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from conftest import REPO_ROOT
from selftrain.schema_file import SCHEMA_FILE, params_json_schema, write_schema

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
MODELINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"


def test_committed_schema_is_current(tmp_path):
    # After a change to selftrain/params_schema.py: `python -m selftrain.schema_file`.
    fresh = write_schema(tmp_path / SCHEMA_FILE).read_text()
    assert (REPO_ROOT / SCHEMA_FILE).read_text() == fresh


def test_params_yaml_points_editors_at_the_schema():
    assert (REPO_ROOT / "params.yaml").read_text().splitlines()[0] == MODELINE


def test_shipped_params_satisfy_the_schema():
    jsonschema.Draft202012Validator(params_json_schema()).validate(SHIPPED)


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("teacher", "epoch", 3),  # a typo
        ("teacher", "epochs", -1),  # below the bound (0 imports teacher.weights)
        ("augment", "device", "tpu"),  # not a choice
        ("student", "dropout", True),  # not a number
    ],
)
def test_schema_flags_what_the_loader_refuses(section, key, value):
    raw = copy.deepcopy(SHIPPED)
    raw[section][key] = value
    errors = list(jsonschema.Draft202012Validator(params_json_schema()).iter_errors(raw))
    assert len(errors) == 1
    # An unknown key is reported at its section, a bad value at its key.
    assert list(errors[0].absolute_path) == [section, key] or repr(key) in errors[0].message


def test_schema_is_json_with_the_draft_named():
    schema = json.loads((REPO_ROOT / SCHEMA_FILE).read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["additionalProperties"] is False
