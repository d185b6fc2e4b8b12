"""The layers of the code, asserted on the import statements of every module (AST, any depth).

- ``cubestream/`` is the library: it imports neither ``cluster``, ``benchmarks`` nor pytest
  (the sibling packages' subcommands and cluster services are named in ``cubestream._plugins``).
- Production code does not import the test world (pytest, the ``testing`` modules, ``tests``).
- Only the replica itself, the demo, the pipeline's replica stage, the benchmarks (which measure
  on a replica) and the test helpers import ``cubestream.replica``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cubestream", "trainers", "cluster", "benchmarks")
TEST_HELPERS = {"cubestream/testing.py", "cluster/testing.py", "trainers/testing.py"}
REPLICA_USERS = {
    "cubestream/demo.py": "the demo serves a replica",
    "cubestream/testing.py": "test helpers build and serve a replica",
    "cluster/_pipeline_replica.py": "the pipeline's replica stage",
}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every imported module name of ``path`` with its line, ``from a import b`` as ``a.b`` too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _under(name: str, *roots: str) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def _violations(
    paths: list[Path], forbidden: tuple[str, ...], allowed: set[str], root: Path = ROOT
) -> list[str]:
    out = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if rel in allowed:
            continue
        out += [
            f"{rel}:{line} imports {name}"
            for line, name in _imports(path)
            if _under(name, *forbidden)
        ]
    return out


def test_the_walk_finds_imports_at_any_depth(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    if True:\n        from cluster import dask\n")
    assert _imports(module) == [(3, "cluster"), (3, "cluster.dask")]
    found = _violations([module], ("cluster",), set(), tmp_path)
    assert found == ["m.py:3 imports cluster", "m.py:3 imports cluster.dask"]
    assert _violations([module], ("cluster",), {"m.py"}, tmp_path) == []
    assert _under("cluster.dask", "cluster") and not _under("clusters", "cluster")


def test_the_library_does_not_import_cluster_benchmarks_or_pytest() -> None:
    bad = _violations(_modules("cubestream"), ("cluster", "benchmarks", "pytest", "_pytest"), set())
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_production_code_does_not_import_the_test_world(package: str) -> None:
    world = (
        "pytest",
        "_pytest",
        "tests",
        "cubestream.testing",
        "cluster.testing",
        "trainers.testing",
    )
    bad = _violations(_modules(package), world, TEST_HELPERS)
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_replica_and_its_users_import_it(package: str) -> None:
    paths = [
        p
        for p in _modules(package)
        if not p.is_relative_to(ROOT / "cubestream" / "replica")
        and not p.is_relative_to(ROOT / "benchmarks")  # they measure stages on a replica
    ]
    bad = _violations(paths, ("cubestream.replica",), set(REPLICA_USERS))
    assert bad == [], "\n".join(bad)


def test_the_sampler_reads_the_world_layout_from_a_neutral_module() -> None:
    names = {name for _, name in _imports(ROOT / "cubestream" / "sample" / "strata.py")}
    assert "cubestream.layout" in names
    assert not any(_under(name, "cubestream.replica") for name in names)


def _scheduler_branches(path: Path) -> list[str]:
    """Comparisons of anything with the literal ``"slurm"`` or ``"pbs"`` (``==``, ``in``...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                names = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else []
                for leaf in [operand, *names]:
                    if isinstance(leaf, ast.Constant) and leaf.value in ("slurm", "pbs"):
                        found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")
    return found


def test_slurm_and_pbs_are_not_string_branches_outside_their_schedulers() -> None:
    allowed = {"cluster/profiles.py"}  # PBSCluster's resource_spec option, a profile field
    paths = [
        p
        for package in PACKAGES
        for p in _modules(package)
        if not p.is_relative_to(ROOT / "cluster" / "schedulers")
        and p.relative_to(ROOT).as_posix() not in allowed
    ]
    bad = [hit for path in paths for hit in _scheduler_branches(path)]
    assert bad == [], "\n".join(bad)
    sample = ROOT / "cluster" / "profiles.py"
    assert _scheduler_branches(sample), "the walk finds the one branch left in profiles.py"
