"""Bulk imports into the topic contract: catalogue feeds, customer lists, order history.

Each importer reads a file (or URL) in constant memory, maps it into the records the
codec accepts, writes the rows it cannot use to a reject file with their line numbers,
and produces the rest with the contract's producer settings (murmur2 partitioning).
"""
