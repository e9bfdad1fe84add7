"""The people's screens: the operator dashboard, the station window and /metrics, in a browser and over HTTP."""
