"""One ComponentResource per shape of the architecture, each with typed dataclass args."""
