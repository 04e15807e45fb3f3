"""Local stand-ins for Cloud Spanner, Pub/Sub, Bigtable and Cloud Tasks: finding, starting,
probing, bootstrapping and stopping them."""
