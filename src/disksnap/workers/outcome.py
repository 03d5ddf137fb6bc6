"""What a job gives back: the operation's result; or a ``Completion`` that records the
job's last change and computes the result inside the transaction that completes the
operation, so that both commit together (and a worker spends one write transaction
where it spent two); or None, which hands the operation back unfinished."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from disksnap.meta import OperationResult, Transaction


@dataclass(frozen=True, slots=True)
class Completion:
    apply: Callable[[Transaction], OperationResult]


Outcome = OperationResult | Completion | None
