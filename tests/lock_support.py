"""Readers and checks for the lock files in requirements/ (``uv pip compile --generate-hashes``
outputs) and for the places that install from them (Makefile, Dockerfiles, workflows).

Every check returns a list of problems (empty: fine), so that a test can show it on the real
files and prove, on a broken copy, that it can fail.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements"
PLATFORM = "x86_64-manylinux_2_28"


@dataclass(frozen=True)
class Consumer:
    """A lock, the Python it is compiled for and what it must cover."""

    python: str
    extras: tuple[str, ...]  # pyproject extras (with the core dependencies); () for none
    inputs: tuple[str, ...]  # requirements/*.in it is compiled from
    constrained_by_dev: bool  # compiled with -c requirements/dev.lock


#: what each lock is for (README "Dependencies: lock files" says the same)
LOCKS: dict[str, Consumer] = {
    # make install, .ci/run, ci.yml, train.yml
    "dev.lock": Consumer("3.11", ("dev",), ("build.in",), constrained_by_dev=False),
    # make install, deploy.yml and the images' build stages: pip, hatchling
    "build.lock": Consumer("3.11", (), ("build.in",), constrained_by_dev=True),
    # docker/serve.Dockerfile (python:3.11-slim), deploy.yml's registry client
    "serve.lock": Consumer("3.11", ("serve",), (), constrained_by_dev=True),
    # docker/train.Dockerfile (Ubuntu 24.04's Python 3.12)
    "train.lock": Consumer("3.12", ("train",), (), constrained_by_dev=True),
    # docker/mlflow.Dockerfile (python:3.11-slim)
    "mlflow.lock": Consumer("3.11", (), ("mlflow.in",), constrained_by_dev=True),
}


@dataclass
class Pin:
    name: str  # canonical (PEP 503)
    extras: frozenset[str]
    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


@dataclass
class Lock:
    command: list[str]  # the `uv pip compile ...` of the header, as words
    pins: dict[str, Pin]
    problems: list[str]  # entries that are not `name==version --hash=...`

    def option(self, flag: str) -> list[str]:
        """The values given to ``flag`` in the header's command (``-c a -c b`` -> [a, b])."""
        words = self.command
        return [words[i + 1] for i, w in enumerate(words[:-1]) if w == flag]


def logical_lines(text: str) -> Iterator[str]:
    """Lines with the `\\` continuations joined."""
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def parse_lock(text: str) -> Lock:
    command: list[str] = []
    pins: dict[str, Pin] = {}
    problems: list[str] = []
    current: Pin | None = None
    for line in logical_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if comment.startswith("uv pip compile") and not command:
                command = shlex.split(comment)
            elif current is not None and comment.startswith("via"):
                current.via += [comment[3:].strip()] if comment[3:].strip() else []
            elif current is not None and line.startswith("    #   "):  # `# via` on its own line
                current.via.append(comment)
            continue
        words = stripped.split()
        spec = " ".join(w for w in words if not w.startswith("--hash="))
        hashes = [w.removeprefix("--hash=") for w in words if w.startswith("--hash=")]
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            problems.append(f"not a requirement: {stripped[:80]}")
            current = None
            continue
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or requirement.url or requirement.marker:
            problems.append(f"{spec}: not pinned with == alone")
        if not hashes or not all(h.startswith("sha256:") for h in hashes):
            problems.append(f"{spec}: no sha256 hash")
        name = canonicalize_name(requirement.name)
        version = specs[0].version if specs else ""
        current = Pin(name, frozenset(requirement.extras), version, hashes)
        pins[name] = current
    return Lock(command, pins, problems)


def read_lock(name: str) -> Lock:
    return parse_lock((REQUIREMENTS / name).read_text())


def project() -> dict[str, Any]:
    loaded: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return loaded


def in_requirements(name: str) -> list[str]:
    """The requirements of requirements/``name`` (an .in or constraints file), -r followed."""
    found: list[str] = []
    for line in (REQUIREMENTS / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += in_requirements(line[3:].strip())
        elif line:
            found.append(line)
    return found


def extra_requirements(pyproject: dict[str, Any], extras: Iterable[str]) -> list[str]:
    """The core dependencies and those of ``extras``, with `pneumo[...]` expanded."""
    project_ = pyproject["project"]
    found = list(project_["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in project_["optional-dependencies"][extra]:
            requirement = Requirement(spec)
            if canonicalize_name(requirement.name) == canonicalize_name(project_["name"]):
                todo += sorted(requirement.extras)
            else:
                found.append(spec)
    return found


def expected_requirements(name: str, pyproject: dict[str, Any]) -> list[str]:
    consumer = LOCKS[name]
    found = extra_requirements(pyproject, consumer.extras) if consumer.extras else []
    for source in consumer.inputs:
        found += in_requirements(source)
    return found


def upper_bound_problems(specs: Iterable[str], own_name: str = "pneumo") -> list[str]:
    """Every range capped: some `<`, `<=`, `==`, `~=` or `===` (the project's own extras aside)."""
    problems = []
    for spec in specs:
        requirement = Requirement(spec)
        if canonicalize_name(requirement.name) == own_name and not requirement.specifier:
            continue
        capped = {"<", "<=", "==", "~=", "==="} & {s.operator for s in requirement.specifier}
        if not capped:
            problems.append(f"{spec}: no upper bound")
    return problems


def coverage_problems(specs: Iterable[str], lock: Lock) -> list[str]:
    """Each requirement pinned in ``lock``, with hashes, inside its range, with its extras."""
    problems = []
    for spec in specs:
        requirement = Requirement(spec)
        pin = lock.pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{spec}: not in the lock")
            continue
        if not pin.hashes:
            problems.append(f"{spec}: pinned without a hash")
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{spec}: the lock has {pin.version}, outside the range")
        if not set(requirement.extras) <= pin.extras:
            problems.append(f"{spec}: the lock's entry lacks extras {sorted(requirement.extras)}")
    return problems


def header_problems(name: str, lock: Lock) -> list[str]:
    """The header's command: hashes, the consumer's Python and platform, the constraints."""
    consumer = LOCKS[name]
    words = lock.command
    problems = []
    if words[:3] != ["uv", "pip", "compile"]:
        return [f"{name}: no `uv pip compile` command in the header"]
    if "--generate-hashes" not in words:
        problems.append(f"{name}: compiled without --generate-hashes")
    if lock.option("--python-version") != [consumer.python]:
        problems.append(f"{name}: Python {lock.option('--python-version')}, not {consumer.python}")
    if lock.option("--python-platform") != [PLATFORM]:
        problems.append(f"{name}: platform {lock.option('--python-platform')}, not {PLATFORM}")
    if lock.option("-o") != [f"requirements/{name}"]:
        problems.append(f"{name}: written to {lock.option('-o')}")
    constraints = set(lock.option("-c"))
    wanted = {"requirements/constraints.txt"}
    wanted |= {"requirements/dev.lock"} if consumer.constrained_by_dev else set()
    if constraints != wanted:
        problems.append(f"{name}: constraints {sorted(constraints)}, not {sorted(wanted)}")
    if sorted(lock.option("--extra")) != sorted(consumer.extras):
        problems.append(f"{name}: extras {lock.option('--extra')}, not {list(consumer.extras)}")
    sources = {w for w in words if w.endswith((".in", ".toml"))}
    wanted_sources = {f"requirements/{s}" for s in consumer.inputs}
    wanted_sources |= {"pyproject.toml"} if consumer.extras else set()
    if sources != wanted_sources:
        problems.append(f"{name}: compiled from {sorted(sources)}, not {sorted(wanted_sources)}")
    return problems


def via_problems(name: str, lock: Lock) -> list[str]:
    """Every `-c`/`-r` file a pin came through is one of requirements/ (no stray seed file)."""
    problems = []
    for pin in lock.pins.values():
        for source in pin.via:
            if source.startswith(("-c ", "-r ")) and not source[3:].startswith("requirements/"):
                problems.append(f"{name}: {pin.name} via {source}")
            if not source:
                problems.append(f"{name}: {pin.name} has an empty via")
        if not pin.via:
            problems.append(f"{name}: {pin.name} has no `via` (where it comes from)")
    return problems


def agreement_problems(name: str, lock: Lock, dev: Lock) -> list[str]:
    """A package the lock shares with dev.lock is at dev.lock's version (the tested one)."""
    return [
        f"{name}: {pin.name}=={pin.version}, dev.lock has {dev.pins[pin.name].version}"
        for pin in lock.pins.values()
        if pin.name in dev.pins and dev.pins[pin.name].version != pin.version
    ]


# --- the make lock recipe ----------------------------------------------------------------------


def make_variable(makefile: str, name: str) -> str:
    """A Makefile variable's value (``NAME ?= v``, ``:=`` or ``=``), continuations joined."""
    for line in logical_lines(makefile):
        match = re.match(rf"^{name}\s*[?:]?=\s*(.*)$", line)
        if match:
            return " ".join(match.group(1).split())
    raise KeyError(name)


def recipe(makefile: str, target: str) -> list[str]:
    """The commands of ``target``'s recipe, continuations joined."""
    commands: list[str] = []
    inside = False
    for line in logical_lines(makefile):
        if re.match(rf"^{re.escape(target)}\s*:", line):
            inside = True
        elif inside and line.startswith("\t"):
            commands.append(" ".join(line.split()))
        elif inside and line.strip() and not line.startswith("#"):
            break
    return commands


def make_lock_commands(makefile: str) -> dict[str, list[str]]:
    """`make lock`'s uv commands as uv writes them in a header (no --quiet, no UPGRADE), by lock."""
    lock = make_variable(makefile, "LOCK")
    lock = lock.replace("$(UV)", "uv").replace("$(UPGRADE)", "")
    commands = {}
    for command in recipe(makefile, "lock"):
        words = [w for w in shlex.split(command.replace("$(LOCK)", lock)) if w != "--quiet"]
        output = words[words.index("-o") + 1]
        commands[output.removeprefix("requirements/")] = words
    return commands


# --- pip installs in Makefile, Dockerfiles, workflows ------------------------------------------

PIP = re.compile(r"\bpip\s+(install|download|wheel)\b(.*?)(?=&&|\|\||;|\||$)", re.MULTILINE)


def pip_commands(text: str) -> list[str]:
    joined = "\n".join(logical_lines(text))
    return [" ".join(m.group(0).split()) for m in PIP.finditer(joined)]


#: pip options that take a value (the next word)
VALUED = {"-r", "--requirement", "-c", "--constraint", "-w", "--wheel-dir", "-d", "--dest",
          "-f", "--find-links", "-i", "--index-url", "--only-binary", "--no-binary"}  # fmt: skip


def pip_targets(words: list[str]) -> tuple[list[str], list[str]]:
    """(requirement files, positional targets) of one pip command's words after the subcommand."""
    files: list[str] = []
    targets: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in VALUED and i + 1 < len(words):
            files += [words[i + 1]] if word in ("-r", "--requirement") else []
            i += 2
            continue
        if not word.startswith("-"):
            targets.append(word)
        i += 1
    return files, targets


def local(target: str) -> bool:
    return target in (".", "..") or target.startswith(("/", "./")) or target.endswith(".whl")


def unhashed_pip_problems(text: str) -> list[str]:
    """Every pip install/download/wheel takes lock files with --require-hashes and nothing else,
    or (with --no-deps) only local paths: pneumo itself, whose dependencies a lock has."""
    problems = []
    for command in pip_commands(text):
        words = command.split()[2:]
        files, targets = pip_targets(words)
        locked = bool(files) and all(f.endswith(".lock") for f in files) and not targets
        own = "--no-deps" in words and not files and bool(targets) and all(map(local, targets))
        if not ((locked and "--require-hashes" in words) or own):
            problems.append(command)
    return problems
