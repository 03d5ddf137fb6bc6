"""The NBD data plane: disks and snapshots as network block devices (docs/nbd.md).

A transport beside REST and gRPC: ``server.NbdServer`` is a ``disksnap serve``
listener; ``exports`` maps export names to engine disks and snapshot views (checked
against metadata); ``proto`` is the wire format; ``client`` is the small client the CLI
uses for import and export.
"""
