"""Station adapter: SQLite store, domain commands, uplink client, staff UI and CLI."""
