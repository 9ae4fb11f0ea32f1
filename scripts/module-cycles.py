#!/usr/bin/env python3
"""Find files that import each other, in every crate of the workspace.

A file's imports are the module paths it names: `use crate::a::b`,
`crate::a::b::item` anywhere in its code, `super::x`, `self::x`. Each is
resolved to the file that defines the item (a path may also start at a
child module, `child::item`): through the module tree (a
path's longest prefix that is a module), then through that module's
`pub use` re-exports (a re-export is followed to the file that defines
the item), so that a `mod.rs` which only re-exports does not count as the
importer's target. Declaring `mod child;` is not an import, nor is a
`pub use child::Item` re-export (the facade of a folder).

Prints every cycle between files of one crate (strongly connected
components of more than one file) and exits 1 if there is any.

Usage: scripts/module-cycles.py [crates-dir]
"""

import os
import re
import sys
from collections import defaultdict

USE = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z0-9_]+)*)(?:::\{([^;]*)\})?\s*(?:as\s+\w+\s*)?;", re.S)
PATH = re.compile(r"\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
RELATIVE = re.compile(r"(?<![A-Za-z0-9_:])([a-z_][a-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
PUB_USE = re.compile(r"\bpub(?:\([a-z]+\))?\s+use\s+([A-Za-z0-9_:]+?)(?:::\{([^;]*)\})?\s*;", re.S)
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
TOKEN = re.compile(
    r'r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?\'(?:\\.|[^\'\\])\'|//[^\n]*|/\*.*?\*/', re.S
)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def strip(src):
    """The code without comments, and with every string and character
    literal emptied, in one pass: whichever starts first wins, so a `//`
    inside a string or a quote inside a comment does not derail it."""

    def blank(m):
        t = m.group(0)
        if t.startswith("/"):
            return ""
        return "' '" if t.startswith("'") else '""'

    return TOKEN.sub(blank, src)


PATH_MOD = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*mod\s+([a-z_][a-z0-9_]*)\s*;')
INLINE_MOD = re.compile(r"\bmod\s+([a-z_][a-z0-9_]*)\s*\{")


def segments(src, module):
    """The source split into (module path, text) pieces: the text of an
    inline `mod name { ... }` belongs to module + (name,)."""
    out = []
    pos = 0
    for m in INLINE_MOD.finditer(src):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while i < len(src) and depth:
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        out.append((module, src[pos : m.start()]))
        out.extend(segments(src[m.end() : i - 1], module + (m.group(1),)))
        pos = i
    out.append((module, src[pos:]))
    return out


def crate_modules(src_dir):
    """Module path (tuple) -> file, for every .rs file under src."""
    modules = {}
    for root, _, files in os.walk(src_dir):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src_dir)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main", "mod"):
                rel = rel[:-1]
            if rel and rel[0] == "bin":
                continue
            modules[tuple(rel)] = path
    return modules


def names_in_group(group):
    """Names of a `{a, b::c, d as e}` group (nested groups flattened)."""
    out = []
    depth = 0
    cur = ""
    for ch in group:
        if ch == "{":
            depth += 1
            cur += ch
        elif ch == "}":
            depth -= 1
            cur += ch
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    flat = []
    for item in out:
        item = item.split(" as ")[0].strip()
        if "{" in item:
            head, rest = item.split("{", 1)
            for sub in names_in_group(rest.rsplit("}", 1)[0]):
                flat.append(head + sub)
        elif item:
            flat.append(item)
    return flat


def absolute(module, path):
    """A `crate::`/`super::`/`self::` path as a tuple from the crate root."""
    parts = path.split("::")
    if parts[0] == "crate":
        return tuple(parts[1:])
    base = list(module)
    while parts and parts[0] in ("super", "self"):
        if parts[0] == "super":
            base = base[:-1]
        parts = parts[1:]
    return tuple(base + parts)


def main():
    crates_dir = sys.argv[1] if len(sys.argv) > 1 else "crates"
    cycles_found = False
    for crate in sorted(os.listdir(crates_dir)):
        src_dir = os.path.join(crates_dir, crate, "src")
        if not os.path.isdir(src_dir):
            continue
        modules = crate_modules(src_dir)
        # A file loaded with `#[path = "..."] mod name;` belongs to the module
        # that declares it (the first, when several do).
        for f in sorted(set(modules.values())):
            declaring = next(k for k, v in modules.items() if v == f)
            for m in PATH_MOD.finditer(COMMENT.sub("", open(f, encoding="utf-8").read())):
                target = os.path.normpath(os.path.join(os.path.dirname(f), m.group(1)))
                for k in [k for k, v in modules.items() if v == target]:
                    del modules[k]
                if not any(v == target for v in modules.values()):
                    modules[declaring + (m.group(2),)] = target
        file_module = {v: k for k, v in modules.items()}
        sources = {f: strip(open(f, encoding="utf-8").read()) for f in modules.values()}

        # Re-exports: (module, name) -> absolute path of what it names.
        reexports = {}
        for f, src in sources.items():
            module = file_module[f]
            for m in PUB_USE.finditer(src):
                head, group = m.group(1), m.group(2)
                if not head.startswith(("crate", "super", "self")) and head.split("::")[0] not in {
                    p[len(module)] if len(p) > len(module) else None for p in modules
                }:
                    continue
                targets = [head + "::" + n for n in names_in_group(group)] if group else [head]
                for t in targets:
                    if not t.startswith(("crate", "super", "self")):
                        t = "self::" + t
                    full = absolute(module, t)
                    reexports[(module, full[-1])] = full

        def resolve(full, seen=0):
            """The file defining the item at `full` (a path from the root)."""
            for cut in range(len(full), -1, -1):
                prefix = full[:cut]
                if prefix in modules:
                    rest = full[cut:]
                    if rest and (prefix, rest[0]) in reexports and seen < 10:
                        target = reexports[(prefix, rest[0])] + rest[1:]
                        if target != full:
                            return resolve(target, seen + 1)
                    return modules[prefix]
            return None

        edges = defaultdict(set)
        for f, src in sources.items():
            for module, text in segments(src, file_module[f]):
                paths = []
                for m in USE.finditer(text):
                    head, group = m.group(1), m.group(2)
                    paths += [head + "::" + n for n in names_in_group(group)] if group else [head]
                paths += [m.group(1) for m in PATH.finditer(text)]
                # Paths from a child module (`child::item`), outside re-exports.
                code = PUB_USE.sub("", text)
                for m in RELATIVE.finditer(code):
                    first = m.group(1).split("::")[0]
                    if module + (first,) in modules:
                        paths.append("self::" + m.group(1))
                for p in paths:
                    target = resolve(absolute(module, p))
                    if target and target != f:
                        edges[f].add(target)

        # Tarjan's strongly connected components.
        index, low, stack, on, comps = {}, {}, [], set(), []
        counter = [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges[v]:
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))

        sys.setrecursionlimit(10000)
        for v in sorted(sources):
            if v not in index:
                visit(v)
        for comp in comps:
            cycles_found = True
            print(f"{crate}: files that import each other:")
            for f in comp:
                inside = sorted(t for t in edges[f] if t in comp)
                print(f"  {os.path.relpath(f, crates_dir)} -> {', '.join(os.path.relpath(t, crates_dir) for t in inside)}")
    if not cycles_found:
        print("module-cycles: no files import each other")
    sys.exit(1 if cycles_found else 0)


if __name__ == "__main__":
    main()
