"""Re-pin requirements.txt and requirements-dev.txt from the packages installed in this venv (`make lock`).

requirements.in names what the product needs at run time, requirements-dev.in what the tests,
benchmarks and lint add. Each lock file pins, at the version installed now, its names and
everything they need (their requirements, with extras and markers, read from the installed
metadata, so nothing is resolved again and no version moves): requirements.txt the runtime
closure, installed by the Dockerfile; requirements-dev.txt (which starts `-r requirements.txt`)
the dev closure less the runtime one. A package installed but needed by neither list fails the
lock: name it in one of the .in files, or uninstall it.

To add a dependency: name it in the right .in file, `pip install` it into .venv, `make lock`.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = {"merseyside-practice-reviews", "merseyside-practice-reviews-dev"}


def read_in(path: Path) -> list[Requirement]:
    """The requirements named in a .in file (comments, blank lines and `-r` includes skipped)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(Requirement(line))
    return out


def installed() -> dict[str, md.Distribution]:
    return {canonicalize_name(d.metadata["Name"]): d for d in md.distributions()}


def closure(roots: list[Requirement], dists: dict[str, md.Distribution]) -> set[str]:
    """The installed distributions that roots need, each with the extras asked of it anywhere."""
    extras: dict[str, frozenset[str]] = {}
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, wanted = todo.pop()
        if name not in dists:
            raise SystemExit(f"{name} is required but not installed in {sys.prefix}")
        have = extras.get(name)
        if have is not None and wanted <= have:
            continue
        extras[name] = have = (have or frozenset()) | wanted
        for text in dists[name].requires or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *sorted(have))):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return set(extras)


def frozen() -> dict[str, str]:
    """pip freeze's line for each installed distribution (its spelling of the name kept)."""
    text = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                          capture_output=True, text=True).stdout
    lines = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+$", line)
        if not m:
            raise SystemExit(f"pip freeze gave a line that is not a plain pin: {line!r}")
        lines[canonicalize_name(m.group(1))] = line
    return lines


def main() -> None:
    dists = installed()
    runtime_roots, dev_roots = read_in(ROOT / "requirements.in"), read_in(ROOT / "requirements-dev.in")
    for req in runtime_roots + dev_roots:
        version = dists[canonicalize_name(req.name)].version if canonicalize_name(req.name) in dists else None
        if version is not None and req.specifier and version not in req.specifier:
            raise SystemExit(f"{req.name} {version} is installed, the .in file asks for {req}")
    runtime = closure(runtime_roots, dists)
    dev = closure(dev_roots, dists) - runtime
    pins = frozen()
    unexplained = sorted(set(pins) - runtime - dev - PRODUCT)
    if unexplained:
        raise SystemExit(f"installed but needed by neither requirements.in nor requirements-dev.in: {unexplained}")
    missing = sorted((runtime | dev) - set(pins) - PRODUCT)
    if missing:
        raise SystemExit(f"needed but not pinned by pip freeze (pip, setuptools?): {missing}")

    def body(names: set[str]) -> str:
        return "".join(f"{pins[n]}\n" for n in sorted(names, key=lambda n: pins[n].partition("==")[0].lower()))

    (ROOT / "requirements.txt").write_text(
        "# Runtime dependencies, pinned: what the image installs (the Dockerfile). Names in requirements.in;\n"
        "# regenerate with `make lock` (scripts/lock_requirements.py). Do not edit by hand.\n" + body(runtime))
    (ROOT / "requirements-dev.txt").write_text(
        "# Tests, benchmarks and lint, pinned, on top of the runtime (never in the image). Names in\n"
        "# requirements-dev.in; regenerate with `make lock` (scripts/lock_requirements.py). Do not edit by hand.\n"
        "-r requirements.txt\n" + body(dev))
    print(f"requirements.txt: {len(runtime)} pins; requirements-dev.txt: {len(dev)} more")


if __name__ == "__main__":
    main()
