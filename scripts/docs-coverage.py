#!/usr/bin/env python3
"""Doc-comment coverage of public symbols, read from Swift symbol graphs.

    docs-coverage.py SYMBOL_GRAPH_DIR MODULE...

Reads every MODULE.symbols.json and MODULE@Other.symbols.json (members added to other modules'
types) below SYMBOL_GRAPH_DIR, counts the public symbols written in this package's sources (run
it from the package's root) and
lists those without a doc comment of their own. Members the compiler synthesizes (a protocol's
default implementations) and comments inherited from another module's protocol do not count as
documented, nor as symbols of ours. Exits 1 when a symbol is undocumented.
"""
import json
import pathlib
import sys


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    modules = sys.argv[2:]
    sources = (pathlib.Path.cwd() / "Sources").as_uri() + "/"
    failed = False
    for module in modules:
        files = sorted({*root.rglob(f"{module}.symbols.json"), *root.rglob(f"{module}@*.symbols.json")})
        if not files:
            print(f"docs-coverage: no symbol graph for {module} below {root}", file=sys.stderr)
            return 1
        seen: dict[str, tuple[str, bool]] = {}
        for path in files:
            graph = json.loads(path.read_text())
            for symbol in graph["symbols"]:
                precise = symbol["identifier"]["precise"]
                if "::SYNTHESIZED::" in precise or symbol["kind"]["identifier"] == "swift.extension":
                    continue
                if symbol.get("accessLevel") not in ("public", "open"):
                    continue
                if not symbol.get("location", {}).get("uri", "").startswith(sources):
                    continue
                comment = symbol.get("docComment")
                documented = bool(
                    comment
                    and comment.get("module", module) == module
                    and any(line.get("text", "").strip() for line in comment.get("lines", []))
                )
                name = ".".join(symbol.get("pathComponents", [])) or symbol["names"]["title"]
                seen[precise] = (name, documented or seen.get(precise, ("", False))[1])
        undocumented = sorted(name for name, documented in seen.values() if not documented)
        total = len(seen)
        print(f"docs-coverage: {module}: {total - len(undocumented)} of {total} public symbols documented")
        for name in undocumented:
            print(f"  undocumented: {name}")
        failed = failed or bool(undocumented)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
