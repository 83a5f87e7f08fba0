#!/usr/bin/env python3
"""The import cycles among the library's source files.

Reads every `use` and every `crate::`/`super::`/`self::` path in src/ (test modules left out), resolves each
to the file that defines the module it names, and prints the strongly connected components of that graph,
largest first: files that, through their imports, all depend on each other. A newcomer has to read the
whole of such a circle to change one of its files, so the architecture keeps it small (the scheduler core).

usage: scripts/module-cycles.py [SRC_DIR] [-v] [--max N]
  -v       also print the imports that tie each circle
  --max N  exit 1 when the largest circle has more than N files
"""
import os, re, sys
args = [a for a in sys.argv[1:]]
verbose = '-v' in args
limit = None
if '--max' in args:
    limit = int(args[args.index('--max') + 1])
    del args[args.index('--max'):args.index('--max') + 2]
args = [a for a in args if a != '-v']
root = (args[0] if args else 'src').rstrip('/')
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            files[p] = open(p).read()
def modpath(p):
    rel = os.path.relpath(p, root)[:-3].split('/')
    if rel[-1] == 'mod': rel = rel[:-1]
    if rel in (['lib'],): return []
    return rel
bymod = {}
for p in files:
    if p.startswith(os.path.join(root, 'bin')): continue
    bymod[tuple(modpath(p))] = p
def resolve(segs):
    # longest module prefix
    best = None
    for i in range(len(segs), -1, -1):
        if tuple(segs[:i]) in bymod: return bymod[tuple(segs[:i])]
    return None
def expand(s):
    # expand a use tree string 'a::{b, c::{d}}' into paths
    s = s.strip()
    m = s.find('{')
    if m < 0:
        return [s.split(' as ')[0].strip()]
    prefix = s[:m]
    depth = 0; parts = []; cur = ''
    body = s[m+1:s.rfind('}')]
    for ch in body:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        if part.strip():
            out += [prefix + x for x in expand(part)]
    return out
def strip_macro_rules(text):
    """Macro bodies name paths relative to where they are expanded, not where they are written."""
    out = ''
    while True:
        m = text.find('macro_rules!')
        if m < 0:
            return out + text
        open_at = text.find('{', m)
        depth = 0
        for i in range(open_at, len(text)):
            depth += {'{': 1, '}': -1}.get(text[i], 0)
            if depth == 0:
                break
        out += text[:m]
        text = text[i + 1:]
def inline_modules_as_self(text):
    """In an inline `mod name { ... }`, `super::` names the file's own module."""
    out = ''
    while True:
        m = re.search(r'\bmod \w+\s*\{', text)
        if not m:
            return out + text
        depth = 0
        for i in range(m.end() - 1, len(text)):
            depth += {'{': 1, '}': -1}.get(text[i], 0)
            if depth == 0:
                break
        out += text[:m.end()] + re.sub(r'\bsuper::', 'self::', text[m.end():i])
        text = text[i:]
edges = {}
for p, text in files.items():
    if p.startswith(os.path.join(root, 'bin')): continue
    # drop test modules
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    text = re.sub(r'//[^\n]*', '', text)
    text = strip_macro_rules(text)
    text = inline_modules_as_self(text)
    me = modpath(p)
    is_mod = p.endswith('mod.rs') or p.endswith('lib.rs')
    selfmod = me
    def absolute(segs, aliases):
        """The path from the crate root that `segs` names here, or None for another crate's."""
        if segs[0] == 'crate':
            return segs[1:]
        if segs[0] in ('super', 'self'):
            base = list(selfmod)
            while segs and segs[0] in ('super', 'self'):
                if segs[0] == 'super':
                    base = base[:-1]
                segs = segs[1:]
            return base + segs
        if segs[0] in aliases:
            return aliases[segs[0]] + segs[1:]
        if tuple(selfmod + segs[:1]) in bymod:  # a child module named without self::
            return selfmod + segs
        return None
    uses = []
    for u in re.finditer(r'\buse\s+([^;]+);', text):
        uses += expand(u.group(1).replace('\n', ' '))
    # A module brought in by `use` can then be named by its last segment: `use super::sync; sync::mutex::x`.
    aliases = {}
    for path in uses:
        segs = [x for x in path.replace(' ', '').split('::') if x]
        full = absolute(segs, {}) if segs else None
        if full and tuple(full) in bymod:
            aliases[full[-1]] = full
    inline = re.findall(r'(?<![\w:])((?:\w+)(?:::\w+)+)', re.sub(r'\buse\s+[^;]+;', '', text))
    tgt = set()
    for path in uses + inline:
        segs = [x for x in path.replace(' ', '').split('::') if x]
        if not segs:
            continue
        full = absolute(segs, aliases)
        if full is None:
            continue
        t = resolve(full)
        if t and t != p:
            tgt.add(t)
    edges[p] = tgt
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
sccs = [s for s in sccs if len(s) > 1]
sccs.sort(key=len, reverse=True)
for s in sccs:
    print(len(s), 'files:', ' '.join(sorted(x[len(root)+1:] for x in s)))
    if verbose:
        ss = set(s)
        for a in sorted(s):
            for b in sorted(edges[a] & ss):
                print('   ', a[len(root)+1:], '->', b[len(root)+1:])
if not sccs:
    print('no cycles')
if limit is not None and sccs and len(sccs[0]) > limit:
    print(f'the largest circle has {len(sccs[0])} files, more than {limit}', file=sys.stderr)
    sys.exit(1)
