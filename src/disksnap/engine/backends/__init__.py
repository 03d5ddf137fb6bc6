"""Chunk backends: bytes by key. See ``base.Backend`` for the contract."""
