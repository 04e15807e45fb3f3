"""What the lab checks in a run's history: strict serializability of strong reads, snapshots
and transfers, the bank invariant, staleness of stale reads, and t-visibility of the activity
feed."""
