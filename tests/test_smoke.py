from pathlib import Path

import psycopg

from conftest import db_url, run_tf


def test_new_gives_an_isolated_database(tf_repo: Path) -> None:
    out = run_tf(tf_repo, "new", "feature-auth").out.strip()
    wt = Path(out.splitlines()[-1])
    assert (wt / ".env").exists()
    with psycopg.connect(db_url(wt), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    root_url = run_tf(tf_repo, "url", "root").out.strip()
    with psycopg.connect(root_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
