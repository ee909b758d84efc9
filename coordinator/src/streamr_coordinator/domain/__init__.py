"""Domain logic: plain async functions over a database session/connection and the cache."""
