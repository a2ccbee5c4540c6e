"""Print the codebase figures issue 8 tracks: largest modules, long functions, local imports, Any, type: ignore.

Usage: python scripts/code_figures.py [--top N]
Counts Python files in the application packages (config, core, governance, synth_engine, audits,
dashboard), migrations excluded.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "core", "governance", "synth_engine", "audits", "dashboard")
LONG_FUNCTION_LINES = 50


def _sources() -> list[Path]:
    return sorted(
        path for package in PACKAGES for path in (REPO / package).rglob("*.py") if "migrations" not in path.parts
    )


def _mentions_any(node: ast.expr | None) -> bool:
    if node is None:
        return False
    return any(
        (isinstance(sub, ast.Name) and sub.id == "Any") or (isinstance(sub, ast.Attribute) and sub.attr == "Any")
        for sub in ast.walk(node)
    )


def _is_bare_any(node: ast.expr | None) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute) and node.attr == "Any")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    top = parser.parse_args().top
    sizes: list[tuple[int, str]] = []
    long_functions: list[tuple[int, str]] = []
    local_imports = 0
    any_signatures = 0
    bare_any_signatures: list[str] = []
    type_ignores = 0
    for path in _sources():
        text = path.read_text()
        name = str(path.relative_to(REPO))
        sizes.append((len(text.splitlines()), name))
        type_ignores += len(re.findall(r"#\s*type:\s*ignore", text))
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > LONG_FUNCTION_LINES:
                long_functions.append((length, f"{name}:{node.lineno} {node.name}"))
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            arguments += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            if _mentions_any(node.returns) or any(_mentions_any(a.annotation) for a in arguments):
                any_signatures += 1
            if _is_bare_any(node.returns) or any(
                _is_bare_any(a.annotation) for a in arguments if a not in (node.args.vararg, node.args.kwarg)
            ):
                bare_any_signatures.append(f"{name}:{node.lineno} {node.name}")
            local_imports += sum(
                isinstance(sub, ast.Import | ast.ImportFrom) for stmt in node.body for sub in ast.walk(stmt)
            )
    print(f"python files: {len(sizes)}, lines: {sum(s for s, _ in sizes)}")
    print(f"'# type: ignore' comments: {type_ignores}")
    print(f"function signatures mentioning Any (incl. dict[str, Any], **kwargs: Any): {any_signatures}")
    print(f"function signatures with a bare Any argument or return: {len(bare_any_signatures)}")
    for where in bare_any_signatures:
        print(f"  {where}")
    print(f"function-local imports: {local_imports}")
    print(f"functions over {LONG_FUNCTION_LINES} lines: {len(long_functions)}")
    for length, where in sorted(long_functions, reverse=True):
        print(f"  {length:5d}  {where}")
    print(f"largest modules (top {top}):")
    for length, where in sorted(sizes, reverse=True)[:top]:
        print(f"  {length:5d}  {where}")


if __name__ == "__main__":
    main()
