"""What travels between Sanji replicas: canonical encoding, signed and sealed frames, typed errors.

Pure: no I/O, no clock, no randomness of its own. Keys and times are arguments.
"""
