"""The UI depends on the HTTP API only: no module of `ui/` imports the server's packages."""

import ast
from pathlib import Path

UI = Path(__file__).parents[2] / "ui"
SERVER_PACKAGES = {"search", "indexer", "generator"}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports (relative imports stay inside `ui/` and are left out)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_no_ui_module_imports_the_server():
    modules = sorted(UI.rglob("*.py"))
    assert len(modules) >= 7  # app, client, common and the four pages: the walk found them
    offending = {str(m.relative_to(UI)): sorted(imported_packages(m) & SERVER_PACKAGES) for m in modules}
    assert {m: p for m, p in offending.items() if p} == {}


def test_the_check_sees_every_form_of_import(tmp_path):
    module = tmp_path / "page.py"
    module.write_text("import search\nimport indexer.store as s\nfrom generator import world\nfrom . import x\n"
                      "def f():\n    from search.params import Filters\n")
    assert imported_packages(module) == {"search", "indexer", "generator"}
