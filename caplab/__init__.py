"""caplab: distributed-systems trade-offs on Google Cloud, made measurable."""
