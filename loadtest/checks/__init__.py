"""What the lab checks in a run's history: linearizability of strong reads and transfers,
the bank invariant, staleness of stale reads, and t-visibility of the activity feed."""
