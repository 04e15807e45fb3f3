"""The stand-in bank: the payout contract with fault injection, for local runs and tests
(``caplab service bank``; ``caplab serve`` and ``make demo`` start it)."""
