# Names the dead-code check (vulture, in scripts/check) must not report, each with why it is alive.
# vulture reads this file as code that uses these names; nothing imports it (ruff skips it, mypy checks src/).

# Used where vulture cannot see
ls_  # the click command `treefork ls`
DOCS  # the config keys' documentation, checked by tests/test_docs.py
extra_groups  # a keyword argument of subprocess.run (proc._Identity)
arg  # libpq's notice-processor callback signature
exc  # __exit__'s signature

# Data: fields written to the registry or parsed from git, kept for whoever reads them
extra, repo_name, created_at, root_db_id, bare, locked, CLONE
_.root_db_id

# The Backend Protocol's lifecycle methods, for the reset / diff / snapshot commands being built
_.reset_branch, _.schema_diff, _.restore, _.drop_snapshot

# Dead, in files others are rewriting as the gate comes in: delete them there, then here
_.rev  # git.Repo.rev
_.is_tracked  # git.Repo.is_tracked
_.requests, _.retries  # neon_api.NeonApi's counters, which nothing reads
