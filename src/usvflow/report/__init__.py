"""Per-session overview figures, the cohort overview table and the session explorer (the report)."""
