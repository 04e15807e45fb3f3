"""The ledger: accounts and transfers on Spanner, reads with a chosen consistency."""
