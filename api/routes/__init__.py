"""The HTTP endpoints, one router per topic."""
