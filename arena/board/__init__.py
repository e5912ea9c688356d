"""The board: battles from judgments, snapshots and their debounced refresh (`snapshots`),
the leaderboard pages (`views`), battle logs to import (`battle_logs`), outlier review."""
