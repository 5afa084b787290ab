"""Layer 2: the catalogue — the only module that imports SQLAlchemy.

``models`` holds the typed ORM tables, ``engine`` opens connections (SQLite pragmas,
``BEGIN IMMEDIATE`` writers, busy timeouts), ``migrate`` drives Alembic, ``queries`` (and
``runs``, ``labels``, ``writes``) return the frozen records of ``records`` to the CLI and the
services, which read them by attribute; ``Record.to_dict`` is a row's JSON document.
"""
