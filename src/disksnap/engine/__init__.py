"""Storage engine: block disks, checkpoints with copy-before-write, changed-block tracking,
a content-addressed chunk store, snapshot manifests, restore, verify and GC.

No HTTP, gRPC or SQL here. The entry point is ``disksnap.engine.engine.Engine``.
"""
