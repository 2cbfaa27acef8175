"""The structure ARCHITECTURE.md describes, checked on the source (AST, not grep):

- the entry layers (faceledger/api, faceledger/web, faceledger/cli, and faceledger/http, the
  plumbing the two HTTP front ends share) import nothing from SQLAlchemy or
  faceledger.db.schema and open no transaction (``.db.read()``/``.db.write()``): services own
  the transactions;
- the package-level import graph (faceledger.<first name>) has no loops; imports under
  ``if TYPE_CHECKING:`` do not count, imports inside functions do (they run);
- at most 8 modules stay flat at the package top; the rest live in domain packages;
- no module is over 400 lines and no function over 60;
- every JSON answer of the API has a response model in /api/v1/openapi.json.

Each failure lists every offender with its file and line, so it doubles as a to-do list."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "faceledger"
ENTRY_LAYERS = ("api", "web", "cli", "http")  # http: the plumbing they share
GENERATED = ("db/migrations/versions",)  # Alembic's generated migrations
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_FLAT_MODULES = 8
FORBIDDEN_IMPORTS = ("sqlalchemy", "faceledger.db.schema")
TRANSACTION_OPENERS = frozenset({"read", "write"})


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    target: str  # dotted module name
    typing_only: bool  # under ``if TYPE_CHECKING:``


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not any(g in p.relative_to(PACKAGE).as_posix() for g in GENERATED))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node, with whether it sits under ``if TYPE_CHECKING:`` (not its else branch)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, typing_only
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, typing_only
                yield from _walk(stmt, typing_only)
            continue
        yield child, typing_only
        yield from _walk(child, typing_only)


def _resolve_from(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _module_name(path).split(".")
    if path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path, tree: ast.Module) -> Iterator[Import]:
    for node, typing_only in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, typing_only)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_from(path, node)
            for alias in node.names:
                # ``from faceledger.governance import ledger`` imports the module faceledger.governance.ledger
                sub = f"{module}.{alias.name}"
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    ROOT / Path(*sub.split(".")) / "__init__.py").exists()
                yield Import(path, node.lineno, sub if is_module else module, typing_only)


def _parsed() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in _modules()}


def _opens_transaction(node: ast.AST) -> bool:
    """``<anything>.db.read(...)``/``.db.write(...)``, or ``db.read()`` on a name ``db``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in TRANSACTION_OPENERS):
        return False
    owner = node.func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "db") or (
        isinstance(owner, ast.Name) and owner.id == "db")


def entry_layer_offences() -> list[str]:
    found: list[str] = []
    for path, tree in _parsed().items():
        if path.relative_to(PACKAGE).parts[0] not in ENTRY_LAYERS:
            continue
        for imp in _imports(path, tree):
            if any(imp.target == f or imp.target.startswith(f + ".") for f in FORBIDDEN_IMPORTS):
                found.append(f"{_rel(path)}:{imp.line}: imports {imp.target}")
        for node, _ in _walk(tree):
            if _opens_transaction(node):
                assert isinstance(node, ast.Call)
                found.append(f"{_rel(path)}:{node.lineno}: opens a transaction "
                             f"({ast.unparse(node.func)}())")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def _node(module: str) -> str | None:
    """The package-level unit a module belongs to: faceledger.<first name>; None for the
    package itself (faceledger/__init__.py: the version) and outside modules."""
    parts = module.split(".")
    if parts[0] != "faceledger" or len(parts) < 2:
        return None
    return parts[1]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package-level edge -> where (``file:line imports module``)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path, tree in _parsed().items():
        src = _node(_module_name(path))
        for imp in _imports(path, tree):
            dst = _node(imp.target)
            if imp.typing_only or src is None or dst is None or src == dst:
                continue
            where = f"{_rel(path)}:{imp.line} imports {imp.target}"
            seen = edges.setdefault((src, dst), [])
            if where not in seen:
                seen.append(where)
    return edges


def loops(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan), sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def size_offences() -> list[str]:
    found: list[str] = []
    for path, tree in _parsed().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{_rel(path)}: module of {lines} lines (> {MAX_MODULE_LINES})")
        for fn in _functions(tree):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{_rel(path)}:{fn.lineno}: function {fn.name} of {length} lines "
                             f"(> {MAX_FUNCTION_LINES})")
    return found


def flat_modules() -> list[str]:
    return sorted(p.name for p in PACKAGE.glob("*.py")
                  if not (p.name.startswith("__") and p.name.endswith("__.py")))


# --- the checks ----------------------------------------------------------------------------


def test_entry_layers_open_no_session_and_import_no_sqlalchemy() -> None:
    found = entry_layer_offences()
    assert not found, (
        f"{len(found)} places where a route, page or command reaches into the database "
        "(call a service instead; see ARCHITECTURE.md):\n  " + "\n  ".join(found))


def test_package_import_graph_has_no_loops() -> None:
    edges = import_graph()
    found = loops(edges)
    report = []
    for component in found:
        report.append("loop between " + ", ".join(component) + ":")
        for (a, b), where in sorted(edges.items()):
            if a in component and b in component:
                report.append(f"  {a} -> {b}: " + "; ".join(where[:3])
                              + (f" (+{len(where) - 3} more)" if len(where) > 3 else ""))
    assert not found, "package-level import loops (runtime imports):\n" + "\n".join(report)


def test_at_most_eight_flat_modules() -> None:
    flat = flat_modules()
    assert len(flat) <= MAX_FLAT_MODULES, (
        f"{len(flat)} modules flat at the top of faceledger/ (at most {MAX_FLAT_MODULES}; move "
        "the rest into their domain package, see ARCHITECTURE.md): " + ", ".join(flat))


def test_no_module_over_400_lines_no_function_over_60() -> None:
    found = size_offences()
    assert not found, "too long (split by concern):\n  " + "\n  ".join(found)


def undocumented_responses(doc: dict[str, Any]) -> list[str]:
    """Operations whose success answer is JSON without a schema naming its fields (a model:
    ``$ref``). Binary answers (images, files) declare no JSON and are not listed."""
    found = []
    for path, operations in sorted(doc["paths"].items()):
        for method, op in operations.items():
            for code, response in op.get("responses", {}).items():
                body = response.get("content", {}).get("application/json")
                if code.startswith("2") and body is not None and "$ref" not in json.dumps(
                        body.get("schema", {})):
                    found.append(f"{method.upper()} {path} ({code}): "
                                 f"{json.dumps(body.get('schema', {}))[:80]}")
    return found


def test_every_api_response_is_documented(tmp_path: Path) -> None:
    """/api/v1/openapi.json gives a response schema for every JSON endpoint (pydantic
    ``response_model``s beside the routes)."""
    from faceledger.server import create_app  # here: the AST checks above run without it
    from faceledger.settings import Settings

    app = create_app(Settings(home=tmp_path / "home", workers=1), load_models=False)
    found = undocumented_responses(app.openapi())
    assert not found, ("API responses without a model (add a response_model):\n  "
                       + "\n  ".join(found))


# --- the checkers themselves catch what they should ----------------------------------------


def test_checkers_see_through_type_checking_and_function_imports(tmp_path: Path) -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from faceledger.search.service import SearchRequest\n"
        "else:\n    import faceledger.governance.ledger\n"
        "def f(core):\n    from faceledger.gallery.repository import x\n"
        "    with core.db.write() as s:\n        return s\n"
        "def g(db):\n    with db.read() as s:\n        return s\n"
        "def h(files):\n    return files.read()\n")
    imports = [(i.target, i.typing_only) for i in _imports(PACKAGE / "web" / "x.py", tree)]
    assert ("faceledger.search.service", True) in imports
    assert ("faceledger.governance.ledger", False) in imports
    assert ("faceledger.gallery.repository", False) in imports
    opened = [ast.unparse(n) for n, _ in _walk(tree) if _opens_transaction(n)]
    assert opened == ["core.db.write()", "db.read()"]


def test_relative_and_from_package_imports_resolve() -> None:
    tree = ast.parse("from .. import docs\nfrom ...web import pages\n"
                     "from faceledger import web, __version__\n")
    targets = [i.target for i in _imports(PACKAGE / "api" / "routes" / "x.py", tree)]
    assert targets == ["faceledger.api.docs", "faceledger.web.pages", "faceledger.web",
                       "faceledger"]
    assert [_node(t) for t in targets] == ["api", "web", "web", None]


def test_undocumented_response_finder() -> None:
    model = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}
    listed = {"content": {"application/json": {"schema": {"type": "array", "items": {
        "$ref": "#/components/schemas/X"}}}}}
    bare = {"content": {"application/json": {"schema": {"type": "object"}}}}
    doc = {"paths": {"/a": {"get": {"responses": {"200": model, "422": bare}}},
                     "/b": {"post": {"responses": {"201": listed}}},
                     "/c": {"get": {"responses": {"200": {"description": "a file"}}}},
                     "/d": {"get": {"responses": {"200": bare}}}}}
    assert undocumented_responses(doc) == ['GET /d (200): {"type": "object"}']


def test_loop_finder() -> None:
    edges = {("a", "b"): [""], ("b", "c"): [""], ("c", "a"): [""], ("c", "d"): [""],
             ("d", "e"): [""], ("e", "d"): [""], ("f", "a"): [""]}
    assert loops(edges) == [["a", "b", "c"], ["d", "e"]]
    assert loops({("a", "b"): [""], ("b", "c"): [""]}) == []
