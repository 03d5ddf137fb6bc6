"""Workers: claim operations from the metadata queue with a lease, run their engine
jobs, report progress by heartbeat, and complete them. In-process by default."""
