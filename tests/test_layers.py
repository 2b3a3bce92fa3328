"""Who imports whom: the library imports no stage, flow or CLI; the flow package holds no
command line; the CLI imports flows and Prefect only inside the commands that run them."""

from __future__ import annotations

import ast
import tomllib

from conftest import REPO_ROOT


def imported(path, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_packages(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_library_imports_no_stage_flow_or_cli():
    for path in sorted((REPO_ROOT / "selftrain").rglob("*.py")):
        assert not top_packages(imported(path)) & {"stages", "flows", "selftrain_cli"}, path


def test_flow_package_holds_no_command_line():
    for path in sorted((REPO_ROOT / "flows").glob("*.py")):
        assert not top_packages(imported(path)) & {"argparse", "selftrain_cli"}, path


def test_cli_imports_flows_and_prefect_lazily():
    script = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]["selftrain"]
    assert script.split(":")[0].split(".")[0] == "selftrain_cli"
    modules = sorted((REPO_ROOT / "selftrain_cli").glob("*.py"))
    assert {p.stem for p in modules} >= {"main", "flow", "refine", "inspection", "report"}
    for path in modules:
        assert not top_packages(imported(path, module_level_only=True)) & {"flows", "prefect"}, path
