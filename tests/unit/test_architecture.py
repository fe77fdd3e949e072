"""The architecture, kept by tests: import contracts (import-linter, read from pyproject.toml),
small modules and functions, unique module names, one definition per artifact name, HTML only
from templates. Each contract is also shown to fail on a violating import."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pneumo import paths

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "pneumo"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def lint_imports(root: Path, src: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under ``src``, with the contracts of ``root``/pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_import_contracts_hold() -> None:
    proc = lint_imports(REPO, REPO / "src")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


VIOLATIONS = {
    # (module that gains the import, the import, the contract that must then break)
    "torch in the numpy-only metrics": (
        "metrics/curves.py",
        "import torch",
        "never import torch",
    ),
    "the data layer importing a stage": (
        "data/schema.py",
        "from pneumo.stages import demo",
        "Layers: each imports only from the layers below it BROKEN",
    ),
    "a cycle between two decoders": (
        "data/decode/failures.py",
        "from pneumo.data.decode import dicom",
        "No import cycles between siblings, at any depth BROKEN",
    ),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_violating_import_breaks_its_contract(case: str, tmp_path: Path) -> None:
    module, statement, broken = VIOLATIONS[case]
    src = tmp_path / "src"
    shutil.copytree(SRC, src / "pneumo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = src / "pneumo" / module
    text = target.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text
    target.write_text(text.replace(marker, f"{marker}\n{statement}  # noqa\n", 1))
    proc = lint_imports(tmp_path, src)
    assert proc.returncode != 0, proc.stdout
    assert broken in proc.stdout.replace("\n", " "), proc.stdout


def test_modules_and_functions_are_small() -> None:
    too_long: list[str] = []
    for path in modules():
        text = path.read_text()
        rel = path.relative_to(SRC)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)


def test_no_module_name_is_used_twice() -> None:
    names = Counter(p.name for p in modules() if p.name != "__init__.py")
    assert [n for n, count in names.items() if count > 1] == []


ARTIFACT_NAMES = sorted(
    value
    for name, value in vars(paths).items()
    if name.isupper() and isinstance(value, str) and "." in value
)


def test_every_artifact_name_is_written_once() -> None:
    assert {"best.pt", "manifest.parquet", "card.json", "metrics.json"} <= set(ARTIFACT_NAMES)
    literals: Counter[str] = Counter()
    for path in modules():
        for match in re.finditer(r"[\"']([\w.-]+\.[a-z]+)[\"']", path.read_text()):
            if match.group(1) in ARTIFACT_NAMES:
                literals[f"{match.group(1)} in {path.relative_to(SRC)}"] += 1
    repeated = [k for k in literals if not k.endswith(" in paths.py")]
    assert repeated == [], f"artifact names written outside pneumo/paths.py: {repeated}"


def test_html_is_built_only_from_templates() -> None:
    """No HTML assembled in Python: the Jinja2 templates (autoescaped) are its one source."""
    offenders = [
        str(path.relative_to(SRC))
        for path in modules()
        if re.search(
            r"html\.escape|<(?:table|tr|td|th|p|h[1-6]|section|figure)[ >]", path.read_text()
        )
    ]
    assert offenders == []
