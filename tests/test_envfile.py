"""Env files: the rewrite keeps every byte outside DATABASE_URL (property test), and the worktree's
env file is the main one with only DATABASE_URL changed and the secrets left out (real CLI)."""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values
from dotenv.parser import parse_stream
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ENV_SAMPLE, PgServer, db_url, git, run_tf
from testing.cli import new
from treefork import envfile
from treefork.errors import FatalError

KEY = "DATABASE_URL"
BOM = "\ufeff"

# ---- the property test ---------------------------------------------------------------------------

_keys = st.sampled_from([KEY, "APP_MODE", "SECRET_TOKEN", "NEON_API_KEY", "X", "DATABASE_URL_OLD", "MY_DATABASE_URL"])
_plain = st.text(alphabet="abcXYZ019_-./:@%+,#=", min_size=0, max_size=12)
_dq_inner = st.text(alphabet="abc 019#=/:'$@-", min_size=0, max_size=12)
_sq_inner = st.text(alphabet='abc 019#=/:"$@-', min_size=0, max_size=12)
_comment_text = st.text(alphabet="abc XYZ 019#='\"=-", max_size=20)
_eol = st.sampled_from(["\n", "\r\n"])


@st.composite
def _binding_line(draw) -> str:
    key = draw(_keys)
    export = draw(st.sampled_from(["", "export "]))
    spacing = draw(st.sampled_from(["=", "=", " = ", "= "]))
    kind = draw(st.sampled_from(["plain", "dq", "sq", "empty"]))
    if kind == "plain":
        value = draw(_plain)
    elif kind == "dq":
        value = '"' + draw(_dq_inner) + '"'
    elif kind == "sq":
        value = "'" + draw(_sq_inner) + "'"
    else:
        value = ""
    trailing = draw(st.sampled_from(["", "", "  # a comment", " #x=y"]))
    if kind in ("plain", "empty") and trailing and not trailing.startswith(" "):
        trailing = " " + trailing
    return f"{export}{key}{spacing}{value}{trailing}"


_line = st.one_of(
    _binding_line(),
    _binding_line(),
    st.builds(lambda t: "#" + t, _comment_text),
    st.sampled_from(["", "   ", "\t"]),
)
# lines python-dotenv cannot parse (an unterminated quote swallows what follows it)
_broken_line = st.sampled_from(['A="unterminated', "B='open", 'export C="x', "=novalue", 'DATABASE_URL="open'])


@st.composite
def env_texts(draw) -> str:
    lines = draw(st.lists(st.one_of(_line, _broken_line) if draw(st.integers(0, 4)) == 0 else _line, max_size=12))
    text = "".join(line + draw(_eol) for line in lines)
    if text and draw(st.booleans()):
        text = text.rstrip("\r\n")  # no trailing newline
    if draw(st.booleans()):
        text = BOM + text
    return text


new_urls = st.one_of(
    st.builds(
        lambda pw, db: f"postgresql://tf_ab12cd:{pw}@127.0.0.1:5432/{db}",
        st.text(alphabet="0123456789abcdef", min_size=8, max_size=32),
        st.from_regex(r"tf_ab12cd_[a-z0-9_]{1,20}", fullmatch=True),
    ),
    st.text(alphabet="abcxyz0189:/@?&=#% '\"$-\\", min_size=1, max_size=30),
)


def _without_key(text: str, key: str) -> str:
    """The text with every binding of key removed (BOM kept), by python-dotenv's own split."""
    bom = BOM if text.startswith(BOM) else ""
    body = text.removeprefix(bom)
    return bom + "".join(b.original.string for b in parse_stream(io.StringIO(body)) if b.key != key)


def _values(text: str) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(text.removeprefix(BOM)), interpolate=False))


def _has_key(text: str, key: str) -> bool:
    return any(b.key == key for b in parse_stream(io.StringIO(text.removeprefix(BOM))))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=env_texts(), url=new_urls)
@example(text=ENV_SAMPLE, url="postgresql://tf_x:pw@127.0.0.1:1/tf_x_a_1")
@example(text=BOM + "# c\r\nDATABASE_URL=old\r\nA=1", url="postgresql://u:p@h/d")
@example(text="A=1", url="postgresql://u:p@h/d")
@example(text='DATABASE_URL=\n#\nDATABASE_URL=\nA="unterminated\nDATABASE_URL=\n', url="=")  # our quote would close A's
@example(text="DATABASE_URL=a\nX=1\r\nexport DATABASE_URL='b'  # two\n", url="postgresql://u:p@h/d")
def test_rewrite_changes_only_database_url(text: str, url: str) -> None:
    # sanity: the split concatenates back to the text (the premise of the byte comparison)
    body = text.removeprefix(BOM)
    assert "".join(b.original.string for b in parse_stream(io.StringIO(body))) == body

    try:
        out = envfile.rewrite(text, {KEY: url})
    except FatalError as e:
        # refusing is allowed only for a file python-dotenv itself cannot fully parse
        assert any(b.error for b in parse_stream(io.StringIO(body))), f"refused a parseable file: {e}"
        assert KEY in str(e)
        return

    assert out.startswith(BOM) == text.startswith(BOM)
    # 1. every byte outside DATABASE_URL's bindings is unchanged
    before, after = _without_key(text, KEY), _without_key(out, KEY)
    if _has_key(text, KEY):
        assert after == before
    else:
        # appended at the end, after a line break added only if the file lacked one
        sep = "" if not body or body.endswith(("\n", "\r")) else ("\r\n" if "\r\n" in body else "\n")
        assert out.startswith(text + sep)
        appended = out[len(text) + len(sep) :]
        assert appended.startswith(KEY + "=") and appended.endswith(("\n", "\r\n"))
    # 2. it parses to the new URL, and every other key keeps its value
    old_values, new_values = _values(text), _values(out)
    assert new_values[KEY] == url
    assert {k: v for k, v in new_values.items() if k != KEY} == {k: v for k, v in old_values.items() if k != KEY}
    # 3. keys keep their order of first appearance
    assert [k for k in new_values if k != KEY] == [k for k in old_values if k != KEY]
    # 4. idempotent: rewriting again with the same URL changes nothing
    assert envfile.rewrite(out, {KEY: url}) == out


@settings(deadline=None)
@given(text=env_texts(), url=new_urls)
def test_rewrite_drops_secret_keys_and_keeps_the_rest(text: str, url: str) -> None:
    try:
        out = envfile.rewrite(text, {KEY: url, "NEON_API_KEY": None})
    except FatalError:
        assert any(b.error for b in parse_stream(io.StringIO(text.removeprefix(BOM))))
        return
    new_values, old_values = _values(out), _values(text)
    assert "NEON_API_KEY" not in new_values
    assert not _has_key(out, "NEON_API_KEY")
    assert new_values[KEY] == url
    assert {k: v for k, v in new_values.items() if k not in (KEY, "NEON_API_KEY")} == {
        k: v for k, v in old_values.items() if k not in (KEY, "NEON_API_KEY")
    }


def test_rewrite_keeps_quote_style_export_and_trailing_comment() -> None:
    text = "export DATABASE_URL='old'  # local db\r\nA=1\r\n"
    assert (
        envfile.rewrite(text, {KEY: "postgresql://u:p@h:5/d"})
        == "export DATABASE_URL='postgresql://u:p@h:5/d'  # local db\r\nA=1\r\n"
    )
    text = 'DATABASE_URL="old"\nA=1'
    assert envfile.rewrite(text, {KEY: "postgresql://u:p@h/d"}) == 'DATABASE_URL="postgresql://u:p@h/d"\nA=1'
    text = "DATABASE_URL=old\n"
    assert envfile.rewrite(text, {KEY: "postgresql://u:p@h/d"}) == "DATABASE_URL=postgresql://u:p@h/d\n"
    # a value a shell would split is quoted even where the original was bare
    assert envfile.rewrite("DATABASE_URL=old\n", {KEY: "a b#c"}) == 'DATABASE_URL="a b#c"\n'
    # a backslash cannot stay in single quotes (python-dotenv reads '\\\\' there as one backslash)
    out = envfile.rewrite("DATABASE_URL='old'\n", {KEY: "a\\\\b"})
    assert envfile.values(out)[KEY] == "a\\\\b"
    # a missing key is appended bare when that is safe, after a line break the file lacked
    assert envfile.rewrite("A=1", {KEY: "postgresql://u:p@h/d"}) == "A=1\nDATABASE_URL=postgresql://u:p@h/d\n"


def test_rewrite_refuses_rather_than_write_a_url_that_does_not_parse() -> None:
    # the unterminated quote would swallow an appended quoted line; bare, it is read back fine
    out = envfile.rewrite('APP_MODE=\nA="\n', {KEY: "postgresql://u:p@h/d"})
    assert envfile.values(out)[KEY] == "postgresql://u:p@h/d"
    with pytest.raises(FatalError, match=KEY):
        envfile.rewrite('APP_MODE=\nA="\n', {KEY: "needs quoting #"})


# ---- the worktree's env file, through the real CLI -----------------------------------------------


def _expected_worktree_env(url: str) -> bytes:
    return (
        f"# app settings\r\nexport APP_MODE=dev\r\nSECRET_TOKEN=\"abc#def=ghi\"  # keep me\r\nDATABASE_URL='{url}'\r\n"
    ).encode()


@pytest.fixture
def server(pg_server: PgServer) -> Iterator[PgServer]:
    """The session's server for `init --server-url`: these tests are about env files, not how a branch is made."""
    with pg_server.dropping_what_is_made():
        yield pg_server


def test_worktree_env_is_the_main_env_with_only_database_url_changed(repo: Path, server: PgServer) -> None:
    main_before = (repo / ".env").read_bytes()
    assert main_before == ENV_SAMPLE.encode()
    run_tf(repo, "init", "--server-url", server.url())
    # the user's own DATABASE_URL is kept, byte for byte
    assert (repo / ".env").read_bytes() == main_before
    assert run_tf(repo, "init", "--server-url", server.url()).rc == 0  # idempotent, and still untouched
    assert (repo / ".env").read_bytes() == main_before

    wt = new(repo, "env-check")
    env_path = wt / ".env"
    url = run_tf(repo, "url", "env-check").out.strip()
    assert url.startswith("postgresql://") and "app_dev" not in url
    data = env_path.read_bytes()
    spelled = url.replace("@127.0.0.1:", "@localhost:")  # the user's loopback spelling stays
    assert data == _expected_worktree_env(spelled)
    assert b"NEON_API_KEY" not in data and b"napi_test_secret" not in data
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert db_url(wt) == spelled
    assert git(wt, "status", "--porcelain", "--untracked-files=all").stdout == ""
    assert git(wt, "check-ignore", "-q", ".env", check=False).returncode == 0

    # a second `new` of the same workspace rewrites nothing
    new(repo, "env-check")
    assert env_path.read_bytes() == data

    # --overwrite-env points the main DATABASE_URL at the root and changes nothing else
    run_tf(repo, "init", "--overwrite-env")
    root_url = run_tf(repo, "url", "root").out.strip()
    main_after = (repo / ".env").read_bytes()
    root_spelled = root_url.replace("@127.0.0.1:", "@localhost:")
    assert main_after == ENV_SAMPLE.replace("postgresql://me:pw@localhost:5432/app_dev", root_spelled).encode()
    assert b"NEON_API_KEY=napi_test_secret_never_copy\r\n" in main_after  # the user's own file keeps its secrets
    run_tf(repo, "rm", "env-check", "--force")


def test_env_file_is_kept_out_of_git_without_a_gitignore(repo: Path, server: PgServer) -> None:
    git(repo, "rm", "-q", "--cached", ".gitignore")
    (repo / ".gitignore").unlink()
    git(repo, "commit", "-q", "-m", "no gitignore")
    run_tf(repo, "init", "--server-url", server.url())
    wt = new(repo, "no-ignore")
    assert (wt / ".env").is_file()
    assert git(wt, "status", "--porcelain", "--untracked-files=all").stdout == ""
    # so `rm` without --force does not call the worktree dirty because of our own file
    run_tf(repo, "rm", "no-ignore")
    assert not wt.exists()


def test_env_example_is_the_template_when_the_main_worktree_has_no_env(repo: Path, server: PgServer) -> None:
    (repo / ".env").unlink()
    example = (
        '# copy me\nexport APP_MODE=dev\nDATABASE_URL="postgresql://localhost/app_dev"  # yours\n'
        "NEON_API_KEY=napi_example\nLAST=1\n"
    )
    (repo / ".env.example").write_text(example)
    git(repo, "add", ".env.example")
    git(repo, "commit", "-q", "-m", "example")
    run_tf(repo, "init", "--server-url", server.url())
    root_url = run_tf(repo, "url", "root").out.strip()
    main_env = (repo / ".env").read_text()
    # init made the main env file from the example, pointing at the root
    root_url = root_url.replace("@127.0.0.1:", "@localhost:")  # the example's loopback spelling stays
    assert main_env == example.replace("postgresql://localhost/app_dev", root_url)
    wt = new(repo, "from-example")
    url = run_tf(repo, "url", "from-example").out.strip()
    text = (wt / ".env").read_text()
    url = url.replace("@127.0.0.1:", "@localhost:")
    assert text == example.replace("postgresql://localhost/app_dev", url).replace("NEON_API_KEY=napi_example\n", ""), (
        main_env,
        text,
    )
    assert git(wt, "status", "--porcelain", "--untracked-files=all").stdout == ""
    assert (repo / ".env.example").read_text() == example
    run_tf(repo, "rm", "from-example")
