"""The package graph flows one way (envs → agents → data → losses → train → tasks → benchmark → meta →
llm → report → cli): a static check of every import in src/mirrorpo, function bodies included."""

import ast
from pathlib import Path

import mirrorpo

ORDER = ("envs", "agents", "data", "losses", "train", "tasks", "benchmark", "meta", "llm", "report", "cli")
ROOT = Path(mirrorpo.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("mirrorpo", *parts))


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import statement anywhere in ``source`` (function bodies included);
    relative imports are resolved against ``package``; also ``from m import x`` yields ``m.x``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("mirrorpo.")]


def layer(module: str) -> int | None:
    parts = module.split(".")
    return ORDER.index(parts[1]) if len(parts) > 1 and parts[1] in ORDER else None


def _graph() -> dict[str, list[tuple[int, str]]]:
    graph = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = imports(path.read_text(), package)
    return graph


GRAPH = _graph()


def test_the_walker_sees_lazy_and_relative_imports():
    source = "import os\nfrom . import x\n\ndef f():\n    from mirrorpo.cli import main\n"
    assert imports(source, "mirrorpo.envs") == [(2, "mirrorpo.envs"), (2, "mirrorpo.envs.x"),
                                                (5, "mirrorpo.cli"), (5, "mirrorpo.cli.main")]
    assert [layer(m) for _, m in imports(source, "mirrorpo.envs")] == [0, 0, 10, 10]
    assert len(GRAPH) > 50 and layer("mirrorpo.errors") is None


def test_no_package_imports_one_to_its_right():
    back_edges = [f"{src}:{line} imports {dst}" for src, found in GRAPH.items() for line, dst in found
                  if layer(src) is not None and layer(dst) is not None and layer(dst) > layer(src)]
    assert back_edges == []
    # the shared root modules (errors, fileio) import no package
    root_imports = [f"{src} imports {dst}" for src, found in GRAPH.items() if layer(src) is None and src != "mirrorpo"
                    for _, dst in found if layer(dst) is not None]
    assert root_imports == []


def test_no_import_cycle_between_modules():
    """Module → module edges (a package's ``__init__`` re-exporting its own modules is not an edge
    back from them), searched for a cycle by depth-first search."""
    edges = {src: {dst for _, dst in found if dst in GRAPH and dst != src and not src.startswith(dst + ".")}
             for src, found in GRAPH.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def cycle_from(node: str) -> list[str] | None:
        visiting.append(node)
        for nxt in sorted(edges[node]):
            if nxt in visiting:
                return visiting[visiting.index(nxt):] + [nxt]
            if nxt not in done and (found := cycle_from(nxt)):
                return found
        visiting.pop()
        done.add(node)
        return None

    cycles = [c for m in sorted(GRAPH) if m not in done and (c := cycle_from(m))]
    assert cycles == []


def test_importing_mirrorpo_caps_the_cpu_instruction_set_unless_told_otherwise():
    import os
    import platform
    import subprocess
    import sys

    probe = "import mirrorpo, os; print(os.environ.get('XLA_FLAGS', ''))"

    def flags(**env):
        clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "MIRRORPO_NATIVE_ISA")}
        return subprocess.run([sys.executable, "-c", probe], env={**clean, **env}, capture_output=True,
                              text=True, check=True).stdout.strip()

    from mirrorpo import portable_xla_flags

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    portable = " ".join(f"--{name}={value}" for name, value in portable_xla_flags().items())
    assert portable.startswith("--xla_cpu_max_isa=AVX2")
    assert flags() == (portable if x86 else "")
    if x86:  # a flag the user set is kept as given; the others are still added
        assert flags(XLA_FLAGS="--xla_cpu_max_isa=SSE4_2").split()[0] == "--xla_cpu_max_isa=SSE4_2"
        assert "--xla_cpu_max_isa=AVX2" not in flags(XLA_FLAGS="--xla_cpu_max_isa=SSE4_2")
    assert flags(XLA_FLAGS="--foo", MIRRORPO_NATIVE_ISA="1") == "--foo"


def test_ruff_with_the_project_rule_set_is_clean():
    """The explicit rule set of pyproject.toml ([tool.ruff.lint]) holds over the whole repository."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a dev dependency (pyproject [dev]); install it"
    proc = subprocess.run([ruff, "check", "src", "tests", "scripts", "benchmarks"], cwd=root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
