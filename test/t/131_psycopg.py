"""Driver of test/t/131_psycopg.pl: the README's psycopg 3 adapter (argv[1], extracted from the README by
the .pl file) against a server with fct (conninfo argv[2]).  Prints one 'ok - ...' line per check and
exits 1 at the first failure."""
import importlib.util
import sys

import numpy as np
import psycopg

spec = importlib.util.spec_from_file_location('fct_psycopg', sys.argv[1])
fct_psycopg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fct_psycopg)


def check(cond, what):
    if not cond:
        print(f'not ok - {what}')
        sys.exit(1)
    print(f'ok - {what}')


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


with psycopg.connect(sys.argv[2], autocommit=True) as conn:
    fct_psycopg.register_embedding(conn)
    conn.execute('CREATE TABLE py_items (id int PRIMARY KEY, emb embedding)')
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 64)).astype(np.float32)
    X[:, 0] *= np.float32(1e-30)               # tiny and huge values: the text form must be exact
    X[:, 1] *= np.float32(1e30)
    X[3, :] = np.float32(3.4028235e38)          # the largest float32
    for i in range(100):                        # numpy arrays, text format
        conn.execute('INSERT INTO py_items VALUES (%t, %t)', [i, X[i]])
    for i in range(100, 200):                   # numpy arrays, binary format
        conn.execute('INSERT INTO py_items VALUES (%b, %b)', [i, X[i]])
    conn.execute('INSERT INTO py_items VALUES (%s, %s)', [1000, X[5].tolist()])   # a list: double precision[]

    rows = conn.execute('SELECT id, emb FROM py_items ORDER BY id').fetchall()
    check(all(isinstance(e, np.ndarray) and e.dtype == np.float32 for _, e in rows),
          'text results are numpy float32 arrays')
    check(all(same_bits(e, X[i if i < 200 else 5]) for i, e in rows),
          'every value sent as text, binary or list reads back bit for bit (text results)')
    rows = conn.execute('SELECT id, emb FROM py_items ORDER BY id', binary=True).fetchall()
    check(all(same_bits(e, X[i if i < 200 else 5]) for i, e in rows),
          'and bit for bit as binary results')
    check(conn.execute('SELECT count(*) FROM py_items WHERE emb = '
                       '(SELECT emb::text FROM py_items WHERE id = 150)::embedding').fetchone()[0] == 1,
          "a binary-sent value equals its server-side text form")

    for fmt in ('%t', '%b', '%s'):
        got = conn.execute(f'SELECT id FROM py_items ORDER BY emb <-> {fmt} LIMIT 1', [X[17]]).fetchone()[0]
        check(got == 17, f'ORDER BY emb <-> {fmt} with a numpy query finds its row')
    got = conn.execute('SELECT id FROM py_items ORDER BY emb <-> %s::embedding, id LIMIT 1',
                       [X[42].tolist()]).fetchone()[0]
    check(got == 42, 'a list in an expression with %s::embedding')

    conn.execute("SELECT fct_register_model('py-m', 2, 1)")
    for binary in (False, True):
        e = conn.execute("SELECT 'py-m:[1.5,-2]|[7]'::embedding", binary=binary).fetchone()[0]
        check(same_bits(e, [1.5, -2]), f"a value with a model and side-information reads as its vector ({'binary' if binary else 'text'})")
    for binary in (False, True):                # register() also adapts embedding[]
        arr = conn.execute('SELECT array_agg(emb ORDER BY id) FROM py_items WHERE id < 3', binary=binary).fetchone()[0]
        check(len(arr) == 3 and all(same_bits(a, X[i]) for i, a in enumerate(arr)),
              f"an embedding[] reads as a list of numpy arrays ({'binary' if binary else 'text'})")
    e = conn.execute('SELECT avg(emb) FROM py_items WHERE id < 200').fetchone()[0]
    check(np.allclose(e, X.astype(np.float64).mean(axis=0), rtol=1e-6, atol=0), 'avg(embedding) reads as a numpy array')
