"""The history database's contract, shared by its one writer (the recorder process) and its
readers (the web UI): ``minutes`` (pure 1-minute aggregation of the state stream),
``store`` (the SQLite schema, writes and pruning) and ``query`` (what the UI asks)."""
