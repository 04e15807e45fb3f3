"""What the caplab services share: settings, client factory, logging, resilience."""
