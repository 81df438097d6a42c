"""Sites and their settings: timer durations in seconds, the client code pattern."""
