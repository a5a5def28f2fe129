"""schema_diff.py's normalisation on dump text: noise (owners, privileges, comments, SET, \\restrict keys,
object order) never shows as a difference; real changes do, object by object."""

from __future__ import annotations

from treefork.backends import schema_diff

BASE = """--
-- PostgreSQL database dump
--
\\restrict AbC123
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: users; Type: TABLE; Schema: public; Owner: alice
--

CREATE TABLE public.users (
    id integer NOT NULL
);

ALTER TABLE public.users OWNER TO alice;

--
-- Name: TABLE users; Type: ACL; Schema: public; Owner: alice
--

GRANT SELECT ON TABLE public.users TO PUBLIC;

--
-- Name: users_id_idx; Type: INDEX; Schema: public; Owner: alice
--

CREATE INDEX users_id_idx ON public.users USING btree (id);

\\unrestrict AbC123
"""


def _noisy_reordering(text: str) -> str:
    """The same schema dumped elsewhere: another owner, other grants, another restrict key, other order."""
    table, index = text.split("--\n-- Name: users_id_idx")
    return (
        "\\restrict ZzZ999\nSET lock_timeout = 0;\n--\n-- Name: users_id_idx"
        + index.replace("\\unrestrict AbC123\n", "")
        + table.replace("alice", "bob").replace("GRANT SELECT", "REVOKE ALL").replace("\\restrict AbC123\n", "")
        + "COMMENT ON TABLE public.users IS 'hello';\n"
    )


def test_noise_and_order_are_not_differences() -> None:
    assert schema_diff.diff_dumps(BASE, _noisy_reordering(BASE)) == ""


def test_a_new_column_is_one_object_diff() -> None:
    changed = BASE.replace("id integer NOT NULL\n", "id integer NOT NULL,\n    email text\n")
    diff = schema_diff.diff_dumps(BASE, changed)
    assert "+    email text" in diff and "OWNER" not in diff and "GRANT" not in diff
    assert schema_diff.changed_objects(diff) == ["TABLE public.users"]
