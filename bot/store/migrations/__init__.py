"""The database schema's history, as Alembic migrations (shipped inside the package).

`SqlStore.open(url)` runs `upgrade head` itself on its own connection (no alembic.ini: the
configuration is built in code by `bot.store.sql.alembic_config`), so deploying a new version
is enough to migrate SQLite or PostgreSQL. A database created before migrations existed is
stamped at `0001` first.

Adding a migration
------------------
1. Change the ORM classes in `bot/store/sql.py`.
2. Add `versions/NNNN_what.py` by hand, copying `script.py.mako`'s shape:
   `revision = "NNNN"`, `down_revision` = the previous file's revision, and `upgrade()` /
   `downgrade()` written with `alembic.op`. Alter existing tables inside
   `with op.batch_alter_table("name") as batch:` so SQLite (which cannot alter most column
   properties in place) works too; use only types and defaults both backends understand
   (`sa.DateTime(timezone=True)` for times, `sa.false()` for boolean defaults).
   Autogenerate can draft it: with `alembic.ini` pointing `script_location` here and
   `sqlalchemy.url` at a database at the previous head, `alembic revision --autogenerate -m
   what` (env.py falls back to that URL, or to `FOURNIL_DATABASE_URL`); review the draft.
3. Run `pytest tests/store`: it migrates fresh and legacy databases on SQLite and PostgreSQL
   and checks the migrated schema against the ORM classes (`compare_metadata` must be empty).
   Never edit a revision that has shipped: add a new one.
"""
