# Names the dead-code check (vulture, in scripts/check) must not report, each with why it is alive.
# vulture reads this file as code that uses these names; nothing imports it (ruff skips it, mypy checks src/).

# Used where vulture cannot see
ls_  # the click command `treefork ls`
autostart  # the click command `treefork server autostart`
server_prune  # the click command `treefork server prune`
DOCS  # the config keys' documentation, checked by tests/test_docs.py
ORIGINS  # state.ORIGINS: the documented origins, checked against the code and docs by tests/test_docs.py
TABLE  # exitcodes.TABLE: docs/cli.md's table of exit codes (scripts/gen_cli_docs.py)
extra_groups  # a keyword argument of subprocess.run (proc._Identity)
arg  # libpq's notice-processor callback signature
exc  # __exit__'s signature

# Data: fields written to the registry or parsed from git, kept for whoever reads them
extra, repo_name, created_at, root_db_id, bare, locked, CLONE
_.root_db_id

run_  # the click command `treefork run`
branch_deleted, branch_kept_reason  # removal.RemoveResult: `rm --json` prints them (asdict)
format_commands  # click calls it to list a group's commands (cli.Group)
printed_by  # shapes.Shape.printed_by: docs/json.md (scripts/gen_json_docs.py)
