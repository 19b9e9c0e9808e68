#!/usr/bin/env python3
"""No circle of files calling each other (src/README.md): after a build, each object's undefined
symbols are mapped, with nm, to the object under src/ that defines them; a set of two or more files
that reach each other through such calls is a circle; so is a set of folders that do (src/README.md
draws the folders as layers, each calling only those below).  Prints each circle and exits 1, or prints
one line and exits 0.  test/run regress runs it on the build it tests.

    python3 test/file_circles.py [TREE] [-v]     (-v: also the calls between folders)
"""
import glob
import os
import subprocess
import sys

args = [a for a in sys.argv[1:] if a != '-v']
src = os.path.join(args[0] if args else '.', 'src')
objs = sorted(glob.glob(os.path.join(src, '**', '*.o'), recursive=True))
if not objs:
    sys.exit(f'file_circles: no objects under {src}: build first')

defined, undefined = {}, {}
for o in objs:
    name = os.path.relpath(o, src)[:-2]
    undefined[name] = set()
    for line in subprocess.run(['nm', '-P', o], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] == 'U':
            undefined[name].add(f[0])
        elif f[1] in 'TDBRGSVWi':
            defined.setdefault(f[0], name)
calls = {a: {defined[s] for s in u if defined.get(s, a) != a} for a, u in undefined.items()}


def folder(f):
    return f.split('/')[0] if '/' in f else '.'


folder_calls = {}
for a, bs in calls.items():
    for b in bs:
        if folder(a) != folder(b):
            folder_calls.setdefault(folder(a), set()).add(folder(b))


def circles(graph):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                c = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    c.append(w)
                    if w == v:
                        break
                if len(c) > 1:
                    out.append(sorted(c))
    return out


found = circles(calls)
for c in found:
    print('circle of files: ' + ' <-> '.join(c))
found_folders = circles(folder_calls)
for c in found_folders:
    print('circle of folders (src/README.md draws the layers): ' + ' <-> '.join(c))
if '-v' in sys.argv:
    for a in sorted(folder_calls):
        print(f'  {a} -> ' + ', '.join(sorted(folder_calls[a])))
print(f'file_circles: {len(objs)} objects, {sum(map(len, calls.values()))} calls between files, '
      + (f'{len(found)} circles of files, {len(found_folders)} of folders' if found or found_folders else 'no circle'))
sys.exit(1 if found or found_folders else 0)
