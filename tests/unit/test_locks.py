"""The lock files (requirements/*.lock) against pyproject.toml, the Makefile and what installs
from them. Offline: the locks are read, not recompiled (`make lock` does that). Each check is
also run on a broken copy, so that each test is shown able to fail."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests import deploy_support as ds
from tests import lock_support as ls

MAKEFILE = (ls.REPO / "Makefile").read_text()
WORKFLOWS = ls.REPO / ".github" / "workflows"
SHA = "sha256:" + "0" * 64


def all_requirements(pyproject: dict[str, Any]) -> list[str]:
    project = pyproject["project"]
    found = list(project["dependencies"]) + list(pyproject["build-system"]["requires"])
    found += [spec for specs in project["optional-dependencies"].values() for spec in specs]
    return found + ls.in_requirements("build.in") + ls.in_requirements("mlflow.in")


def make_pin(makefile: str, variable: str) -> str:
    match = re.search(rf"^{variable}\s*\?=\s*(\S+)", makefile, re.MULTILINE)
    assert match, variable
    return match.group(1)


# --- each lock: pinned, hashed, covering its inputs -------------------------------------------


@pytest.mark.parametrize("name", ls.LOCKS)
def test_every_entry_is_pinned_with_hashes(name: str) -> None:
    lock = ls.read_lock(name)
    assert lock.pins and lock.problems == []


def test_entry_check_can_fail() -> None:
    text = f"six>=1 --hash={SHA}\nsix==1.16.0\nrequests @ https://x/r.whl --hash={SHA}\n-e .\n"
    problems = ls.parse_lock(text).problems
    assert len(problems) == 4, problems


@pytest.mark.parametrize("name", ls.LOCKS)
def test_lock_covers_what_it_is_for(name: str) -> None:
    expected = ls.expected_requirements(name, ls.project())
    assert expected
    assert ls.coverage_problems(expected, ls.read_lock(name)) == []


def test_coverage_check_can_fail() -> None:
    lock = ls.read_lock("dev.lock")
    assert ls.coverage_problems(["mlflow>=4,<5"], lock)  # outside the range
    assert ls.coverage_problems(["no-such-package>=1,<2"], lock)  # missing
    assert ls.coverage_problems(["dvc[gs]>=3,<4"], lock)  # an extra the entry lacks
    pyproject = ls.project()
    pyproject["project"]["optional-dependencies"]["serve"].append("torch>=2.4,<3")
    assert ls.coverage_problems(
        ls.extra_requirements(pyproject, ["serve"]), ls.read_lock("serve.lock")
    )


def test_every_range_has_an_upper_bound() -> None:
    assert ls.upper_bound_problems(all_requirements(ls.project())) == []


def test_upper_bound_check_can_fail() -> None:
    assert len(ls.upper_bound_problems(["numpy>=1.26", "six!=1.0", "pneumo[train]"])) == 2
    assert ls.upper_bound_problems(["a>=1,<2", "b==1.0", "c~=1.2", "d<=3"]) == []


def test_build_in_is_pyprojects_build_backend() -> None:
    backend = ls.project()["build-system"]["requires"]
    assert set(backend) <= set(ls.in_requirements("build.in"))


# --- how each lock was made: the header is `make lock`'s command for its consumer --------------


@pytest.mark.parametrize("name", ls.LOCKS)
def test_header_is_make_locks_command_for_its_consumer(name: str) -> None:
    lock = ls.read_lock(name)
    assert ls.header_problems(name, lock) == []
    assert lock.command == ls.make_lock_commands(MAKEFILE)[name]
    assert ls.via_problems(name, lock) == []


def test_make_lock_writes_every_lock() -> None:
    assert set(ls.make_lock_commands(MAKEFILE)) == set(ls.LOCKS)
    assert {p.name for p in ls.REQUIREMENTS.glob("*.lock")} == set(ls.LOCKS)


def test_header_checks_can_fail() -> None:
    lock = ls.read_lock("train.lock")
    lock.command = [w.replace("3.12", "3.11") for w in lock.command]
    assert any("Python" in p for p in ls.header_problems("train.lock", lock))
    lock = ls.read_lock("serve.lock")
    at = lock.command.index("requirements/dev.lock")
    lock.command = lock.command[: at - 1] + lock.command[at + 1 :]
    assert any("constraints" in p for p in ls.header_problems("serve.lock", lock))
    lock = ls.read_lock("serve.lock")
    lock.command.remove("--generate-hashes")
    assert ls.header_problems("serve.lock", lock)
    seeded = ls.parse_lock(f"six==1.16.0 --hash={SHA}\n    # via\n    #   -c /tmp/seed.txt\n")
    assert ls.via_problems("dev.lock", seeded)


def test_locks_agree_with_dev_lock() -> None:
    dev = ls.read_lock("dev.lock")
    for name in ls.LOCKS:
        assert ls.agreement_problems(name, ls.read_lock(name), dev) == []
    serve = ls.read_lock("serve.lock")
    serve.pins["numpy"].version = "1.0"
    assert ls.agreement_problems("serve.lock", serve, dev)


# --- the torch pair and the MLflow server ------------------------------------------------------


def test_torch_pair_is_the_makefiles_everywhere() -> None:
    constraints = {
        Requirement(spec).name: str(Requirement(spec).specifier)
        for spec in ls.in_requirements("constraints.txt")
    }
    pair = {"torch": "TORCH_VERSION", "torchvision": "TORCHVISION_VERSION"}
    assert set(constraints) == set(pair)
    for package, variable in pair.items():
        version = make_pin(MAKEFILE, variable)
        assert constraints[package] == f"=={version}"
        for name in ("dev.lock", "train.lock"):
            assert ls.read_lock(name).pins[package].version == version, (name, package)
    for name in ("serve.lock", "mlflow.lock", "build.lock"):
        assert not set(pair) & set(ls.read_lock(name).pins), f"{name} has torch"


def test_mlflow_server_runs_the_tested_client() -> None:
    tested = ls.read_lock("dev.lock").pins["mlflow"].version
    assert ls.read_lock("mlflow.lock").pins["mlflow"].version == tested
    assert ls.read_lock("serve.lock").pins["mlflow-skinny"].version == tested
    compose = yaml.safe_load((ls.REPO / "compose.yaml").read_text())
    assert compose["services"]["mlflow"]["image"] == f"pneumo-mlflow:{tested}"
    assert "requirements/mlflow.lock" in (ds.DOCKER / "mlflow.Dockerfile").read_text()


# --- what installs from the locks --------------------------------------------------------------


def test_make_install_installs_the_locks_then_pneumo_alone() -> None:
    stamp = next(line for line in MAKEFILE.splitlines() if line.startswith("$(STAMP):"))
    assert {"pyproject.toml", "requirements/build.lock", "requirements/dev.lock"} <= set(
        stamp.split(":", 1)[1].split()
    )
    pips = ls.pip_commands("\n".join(ls.recipe(MAKEFILE, "$(STAMP)")))
    assert [p.split()[-1] for p in pips] == [
        "requirements/build.lock",
        "requirements/dev.lock",
        ".",
    ]
    assert all("--require-hashes" in p for p in pips[:2])
    assert {"--no-deps", "--no-build-isolation", "-e"} <= set(pips[2].split())


def install_texts() -> dict[str, str]:
    """The shell each install runs: Makefile recipes, Dockerfile RUNs, workflow steps, .ci/run."""
    texts = {"Makefile": "\n".join(ls.recipe(MAKEFILE, "$(STAMP)") + ls.recipe(MAKEFILE, "lock"))}
    for path in sorted(ds.DOCKER.glob("*.Dockerfile")):
        runs = [i.args for i in ds.instructions(path.read_text()) if i.keyword == "RUN"]
        texts[path.name] = "\n".join(runs)
    for path in sorted(WORKFLOWS.glob("*.yml")):
        jobs = yaml.safe_load(path.read_text())["jobs"].values()
        steps = [str(s.get("run", "")) for job in jobs for s in job.get("steps", [])]
        texts[path.name] = "\n".join(steps)
    ci = (ls.REPO / ".ci" / "run").read_text().splitlines()
    texts[".ci/run"] = "\n".join(line for line in ci if not line.lstrip().startswith("#"))
    return texts


def test_every_pip_install_is_from_a_lock_by_hash() -> None:
    texts = install_texts()
    assert sum(len(ls.pip_commands(text)) for text in texts.values()) >= 10
    assert {name: ls.unhashed_pip_problems(text) for name, text in texts.items()} == {
        name: [] for name in texts
    }


def test_unhashed_install_check_can_fail() -> None:
    bad = [
        'pip install -e ".[dev]"',
        "pip install --no-deps torch",
        "pip install --require-hashes -r requirements.txt",
        "pip install -r requirements/dev.lock",
        "pip install --require-hashes -r requirements/dev.lock boto3",
        'pip install --quiet "dvc[s3]==3.67.1"',
    ]
    assert len(ls.unhashed_pip_problems("\n".join(bad))) == len(bad)
    good = "pip install --require-hashes -r requirements/dev.lock && pip install --no-deps -e .\n"
    assert ls.unhashed_pip_problems(good) == []


@pytest.mark.parametrize(
    ("dockerfile", "lock"),
    [("serve.Dockerfile", "serve.lock"), ("train.Dockerfile", "train.lock"),
     ("mlflow.Dockerfile", "mlflow.lock")],
)  # fmt: skip
def test_each_image_installs_its_lock(dockerfile: str, lock: str) -> None:
    final = ds.read_dockerfile(dockerfile).final
    runs = " ".join(i.args for i in final.all("RUN"))
    assert "--require-hashes" in runs
    assert re.search(rf"\b{re.escape(lock)}\b", runs), f"{dockerfile}'s final stage: {runs}"


def test_readme_says_what_each_lock_is_for() -> None:
    readme = (ls.REPO / "README.md").read_text()
    start = readme.index("## Dependencies: lock files")
    section = readme[start : readme.index("\n## ", start + 1)]
    assert "make lock" in section
    for name, consumer in ls.LOCKS.items():
        rows = [line for line in section.splitlines() if f"requirements/{name}" in line]
        assert any(f"Python {consumer.python}" in row for row in rows), name
