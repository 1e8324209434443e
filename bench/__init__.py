"""``python -m bench`` (``make bench``): a load run of one part's app on PostgreSQL.

It prints req/s and p50/p99 latency for ``GET /books/{id}`` and ``POST /orders`` beside anchors
measured in the same run on the same machine: ``GET /health`` through the same server (the
framework's ceiling), a bare SQLAlchemy read of one book, and the order's writes in raw asyncpg.
Machines are shared and noisy, so the ratios to the anchors are the figures to keep.
"""
