"""Layer 2: the catalogue — the only module that imports SQLAlchemy.

``models`` holds the typed ORM tables, ``engine`` opens connections (SQLite pragmas,
``BEGIN IMMEDIATE`` writers, busy timeouts), ``migrate`` drives Alembic, ``queries`` returns
plain dictionaries for the CLI and the services.
"""
