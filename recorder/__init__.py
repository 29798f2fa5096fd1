"""The history recorder: 1-minute aggregates of the worker's state stream in SQLite
(``minutes.py`` pure accumulation, ``store.py`` the database, ``query.py`` what the UI asks)."""
