"""Several worker processes and machines: who serves which room (signaling/cluster/directory.py)."""
