"""Domain: the vocabulary every layer shares (errors with canonical codes, clock, ids).

Imports nothing from the rest of disksnap.
"""
