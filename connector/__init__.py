"""The core: domain rules and use-case services for the ambassador program.

Imports only the standard library and itself (checked by import-linter in CI). Everything that
touches a framework, a database, a queue or a remote platform is behind a port in
:mod:`connector.ports` and lives in :mod:`adapters`.
"""
