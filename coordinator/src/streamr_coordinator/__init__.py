"""StreamrP2P coordinator: accounts, streams and keys, SRS hooks, friend nodes."""
