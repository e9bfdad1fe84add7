"""What the station node and the hub store alike: the SQLite connection rules, the merged records,
the change log and the application projection. Both adapters build on it; it imports neither."""
