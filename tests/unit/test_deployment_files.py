"""docker-compose.yml cannot be run here (no Docker engine), so its structure is checked instead."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"}


def test_services_follow_the_official_airflow_3_shape():
    services = COMPOSE["services"]
    assert AIRFLOW_SERVICES | {"postgres", "warehouse-db", "redis"} <= set(services)
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
                        "airflow-triggerer": "triggerer"}


def test_every_long_running_service_has_a_health_check_and_restarts():
    for name, service in COMPOSE["services"].items():
        if name == "airflow-init":
            continue
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service.get("restart") == "always", name


def test_airflow_runs_celery_on_postgres_with_a_separate_warehouse_database():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://") and "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@warehouse-db:" in env["AIRFLOW_CONN_REVIEWS_WAREHOUSE"]
    assert "SimpleAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"] or "FabAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"]
    for name in AIRFLOW_SERVICES:
        assert COMPOSE["services"][name]["image"] == "merseyside-reviews-airflow:latest"
    assert {"airflow-metadata", "reviews-warehouse", "airflow-logs"} <= set(COMPOSE["volumes"])
    assert COMPOSE["services"]["warehouse-db"]["volumes"][-1].startswith("./sql/schema.postgresql.sql:")


def test_secrets_come_from_env_file_never_literals():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)(?::-[^}]*)?\}", text))  # $${X} is for the shell
    example = (ROOT / ".env.example").read_text()
    declared = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used <= declared, f"declare in .env.example: {sorted(used - declared)}"
    assert not re.search(r"(PASSWORD|SECRET|KEY)\s*:\s*['\"]?[A-Za-z0-9]{6,}", text), "a literal secret in compose"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_image_pins_the_same_airflow_as_requirements():
    pinned = re.search(r"^apache-airflow==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}-python3.11" in (ROOT / "Dockerfile").read_text()


# --------------------------------------------------------------------------------------------
# The image installs the runtime only: requirements.txt, never requirements-dev.txt, tests/ or dev/.

DEV_TOOLS = {"pytest", "hypothesis", "aiosmtpd", "ruff", "govuk-bank-holidays", "iniconfig", "sortedcontainers",
             "atpublic", "pytest-xdist", "pytest-cov", "pytest-mock", "pytest-timeout", "coverage", "mypy", "black",
             "flake8", "isort", "pylint", "pre-commit", "tox", "nox", "pip-tools"}


def _pins(name: str) -> dict[str, str]:
    """A requirements file's pins by canonical name; every line is a comment, an include or NAME==VERSION."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("-r "):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([\w.!+-]+)", line)
        assert m, f"{name}: not an exact pin: {line!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _names_in(name: str) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(line.split("#", 1)[0]).name)
            for line in (ROOT / name).read_text().splitlines()
            if line.split("#", 1)[0].strip() and not line.startswith("-")}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(m.group(1).upper(), m.group(2)) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
            if not m.group(0).lstrip().startswith("#")]


def test_runtime_requirements_hold_no_test_bench_or_lint_dependency():
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert not DEV_TOOLS & set(runtime), f"dev tools in requirements.txt: {sorted(DEV_TOOLS & set(runtime))}"
    assert not set(dev) & set(runtime), f"pinned in both files: {sorted(set(dev) & set(runtime))}"
    assert {"pytest", "hypothesis", "aiosmtpd", "ruff"} <= set(dev)
    first = next(line for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    assert first == "-r requirements.txt"
    assert _names_in("requirements.in") <= set(runtime)
    assert _names_in("requirements-dev.in") <= set(runtime) | set(dev)


def test_the_image_copies_and_installs_only_the_runtime():
    instructions = _dockerfile_instructions()
    sources = [word for op, args in instructions if op in {"COPY", "ADD"}
               for word in args.split()[:-1] if not word.startswith("--")]
    assert sources, "the Dockerfile copies nothing?"
    for source in sources:
        top = source.strip("./").split("/")[0]
        assert top and top not in {"dev", "tests", "scripts", "docs"} and "requirements-dev" not in source, source
    installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert installs
    for args in installs:
        assert "requirements-dev" not in args and not re.search(r"(?<![\w/])(dev|tests)(/|\b)", args), args
        assert not DEV_TOOLS & set(re.findall(r"[A-Za-z0-9_.-]+", args)), args
    assert any("-r /opt/project/requirements.txt" in args for args in installs)


def test_runtime_pins_are_complete_without_the_dev_ones():
    """Everything a runtime package needs (extras and markers included, read from the installed
    metadata, as `make lock` does) is pinned in requirements.txt, not only in requirements-dev.txt."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lock_requirements", ROOT / "scripts" / "lock_requirements.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    from packaging.requirements import Requirement

    runtime = _pins("requirements.txt")
    needed = lock.closure([Requirement(n) for n in runtime], lock.installed())
    assert needed <= set(runtime), f"needed at run time, not in requirements.txt: {sorted(needed - set(runtime))}"
    dev_only = set(_pins("requirements-dev.txt"))
    assert not lock.closure([Requirement(n) for n in _names_in("requirements.in")], lock.installed()) & dev_only


def test_product_imports_no_dev_only_distribution():
    """No module of include/, plugins/ or dags/ imports a package that only requirements-dev.txt installs."""
    import ast
    import importlib.metadata as md

    from packaging.utils import canonicalize_name

    dev_only = set(_pins("requirements-dev.txt"))
    owners = {mod: {canonicalize_name(d) for d in dists} for mod, dists in md.packages_distributions().items()}
    wrong = []
    for folder in ("include", "plugins", "dags"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top in {"reviews_dev", "tests"} or owners.get(top, set()) & dev_only:
                        wrong.append(f"{path.relative_to(ROOT)}: {top}")
    assert wrong == []
