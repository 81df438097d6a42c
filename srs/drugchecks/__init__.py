"""Drug checking and the early-warning programme: checks, the watch list, drug alerts."""
