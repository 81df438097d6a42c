"""Staff, roles per site, login sessions and the PIN lock, API tokens, audit."""
