"""Imports run one way. Every ``import`` in the package (at the top, inside functions, under
TYPE_CHECKING alike) is checked against the table of allowed arrows in the README's Layout section,
and the heavy third-party libraries against the packages that own them. The tables are read from
the README, so the documented layering and the enforced one cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "motionlib"


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else None]


def _table(title: str, heading: str) -> dict[str, set[str]]:
    """The Markdown table under ``heading`` in the README section ``title``: first column (a
    `name`) -> the `names` in its last column."""
    section = _section(title)
    rows: dict[str, set[str]] = {}
    block = section[section.index(heading):]
    for line in block.splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        first = re.findall(r"`([^`]+)`", cells[0])
        if first:
            rows[first[0]] = set(re.findall(r"`([^`]+)`", cells[-1]))
    assert rows, f"no table under {heading!r} in the README's {title} section"
    return rows


def allowed_arrows() -> dict[str, set[str]]:
    return _table("Layout", "| package | may import |")


def owners() -> dict[str, set[str]]:
    """third-party module -> the packages that may import it."""
    by_package = _table("Layout", "| package | the only one to import |")
    out: dict[str, set[str]] = {}
    for package, modules in by_package.items():
        for m in modules:
            out.setdefault(m, set()).add(package)
    return out


def package_of(path: Path, root: Path = PACKAGE) -> str:
    """The layer a source file belongs to: its folder below motionlib/, or the module's name."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = rel.stem
    # the package's own __init__ holds only __version__: it belongs with core
    return {"__init__": "core", "__main__": "cli"}.get(stem, stem)


def imports(path: Path, root: Path = PACKAGE):
    """(line, imported module) for every import in a file; ``from motionlib import x`` names the
    submodule ``motionlib.x`` when there is one."""
    top = root.parent
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(path.relative_to(top).with_suffix("").parts)[: -node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                is_module = (top / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (top / Path(*sub.split("."))).is_dir()
                yield node.lineno, sub if is_module else module


def target(module: str) -> tuple[str, str] | None:
    """(layer, module path below motionlib) of a motionlib import; None for third-party ones."""
    parts = module.split(".")
    if parts[0] != "motionlib":
        return None
    if len(parts) == 1:
        return "core", ""  # ``from motionlib import __version__``
    return parts[1], ".".join(parts[1:])


def violations(root: Path = PACKAGE) -> list[str]:
    arrows, owned = allowed_arrows(), owners()
    found = []
    for path in sorted(root.rglob("*.py")):
        layer = package_of(path, root)
        allowed = arrows.get(layer)
        where = path.relative_to(root.parent)
        if allowed is None:
            found.append(f"{where}: layer {layer!r} is not in the README's table")
            continue
        for line, module in imports(path, root):
            hit = target(module)
            if hit is None:
                top = module.split(".")[0]
                if top in owned and layer not in owned[top]:
                    found.append(f"{where}:{line}: {layer} imports {top} (only {', '.join(sorted(owned[top]))} may)")
                continue
            to, sub = hit
            if to == layer:
                continue
            if to in allowed or any(sub == a or sub.startswith(a + ".") for a in allowed):
                continue
            found.append(f"{where}:{line}: {layer} -> {sub or to}")
    return found


def test_every_import_follows_the_table():
    found = violations()
    assert not found, "imports against the README's Layout table:\n" + "\n".join(found)


def test_the_table_is_acyclic_and_covers_every_layer():
    arrows = allowed_arrows()
    layers = {package_of(p) for p in PACKAGE.rglob("*.py")}
    assert layers <= set(arrows), layers - set(arrows)
    # no cycle: repeatedly remove layers that import nothing still present
    graph = {k: {a.split(".")[0] for a in v} - {k} for k, v in arrows.items()}
    while graph:
        leaves = [k for k, v in graph.items() if not (v & set(graph))]
        assert leaves, f"the allowed arrows form a cycle among {sorted(graph)}"
        for k in leaves:
            del graph[k]


def test_the_check_catches_an_upward_import(tmp_path):
    """The checker is not vacuous: a render module reaching into the library, a TUI module into
    the CLI, and processing importing zarr are each reported."""
    pkg = tmp_path / "motionlib"
    for sub, text in {
        "render/bad.py": "def f():\n    from motionlib.library import Library\n",
        "tui/bad.py": "from motionlib.cli.app import app\n",
        "processing/bad.py": "import zarr\n",
        "core/ok.py": "from motionlib.core.names import Ref\n",
    }.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(text)
    found = violations(pkg)
    assert any("render -> library" in f for f in found), found
    assert any("tui -> cli.app" in f for f in found), found
    assert any("processing imports zarr" in f for f in found), found
    assert not any("core/ok.py" in f for f in found), found


MESSAGE_FLAG = re.compile(r"(^|[\s(])--[a-z][a-z-]+")


def _raised_text(node: ast.Raise) -> str:
    """The literal text of the message a ``raise X(...)`` builds (f-string pieces included)."""
    call = node.exc
    if not isinstance(call, ast.Call) or not call.args:
        return ""
    parts = []
    for sub in ast.walk(call.args[0]):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            parts.append(sub.value)
    return " ".join(parts)


@pytest.mark.parametrize("layer", ["core", "processing", "store", "index", "media", "exchange", "ingest",
                                   "render", "library"])
def test_library_messages_name_parameters_not_flags(layer):
    """Below the CLI an error names the parameter (``{start}``) and the CLI spells it as its flag."""
    found = []
    paths = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else (PACKAGE / layer).rglob("*.py")
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and MESSAGE_FLAG.search(_raised_text(node)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {_raised_text(node)[:80]}")
    assert not found, "\n".join(found)
