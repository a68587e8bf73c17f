"""The one owner of Redis (internal): where connections come from and how they are kept.

``connection`` resolves, validates, connects and redacts a URL (plain, TLS, Sentinel, Cluster),
``liveness`` tells a live connection from a dead one, ``shards`` follows the store's slot with
sharded Pub/Sub, ``keyspace`` holds the store's keys and Lua scripts, ``forking`` carries every
live client into a forked child. Nothing outside hotconfig imports this package.
"""
