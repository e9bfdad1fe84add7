"""District hub adapter: SQLite store, aiohttp app, ingest, feeds, catalogue releases, operator CLI."""
