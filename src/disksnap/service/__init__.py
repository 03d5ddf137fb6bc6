"""Service layer: the behaviour both transports share (disks, snapshots, operations,
auth, quotas, validation). Transports parse, call ``Dispatcher.dispatch`` with the
official request message, and convert the official response message back."""
