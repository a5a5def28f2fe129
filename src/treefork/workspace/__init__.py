"""The use cases: one module each, composed from git, the backends, env files and the registry."""
