"""Helpers of ``test_schemathesis.py``: the schemathesis run, the live server with real
resources to aim at, the deterministic "realistic" rewrite of generated cases, the two
checks and the report of what broke them."""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from schemathesis import Case, HookContext
from schemathesis.engine import events, from_schema

from tests.e2e.conftest import Server

PROFILE = "disksnap-schemathesis"
SEED = 20240611
MAX_EXAMPLES = 25  # per operation and generation mode, in the fuzzing phase
MiB = 1 << 20
ZONE = "ru-central1-a"
DISK_TYPE = "network-hdd"
BOGUS_TOKEN = "not-a-token"  # a deliberately unknown bearer token


def schema_config(rest: str) -> schemathesis.Config:
    """Fixed seed, derandomized, one worker, a bounded number of examples (no shrinking
    either, see ``_generate_only``); positive and negative data; the examples, coverage
    (boundary values, missing and wrong-typed parameters, methods the document does not
    list) and fuzzing phases, not the stateful one (its length is not bounded by
    ``max-examples``). Generation does not feed on responses (values they carry, error
    messages), which hold random ids: the same cases are generated on every run. No
    built-in check: the two properties are judged in ``judge``."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": rest,
            "workers": 1,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": True, "extra-data-sources": {"responses": False}},
                "coverage": {"enabled": True, "extra-data-sources": {"responses": False}},
                "fuzzing": {
                    "enabled": True,
                    "extra-data-sources": {"responses": False},
                    "error-feedback": {"enabled": False},
                },
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": False},
            # A new connection per request: the test does not depend on keep-alive latency.
            "headers": {"Connection": "close"},
            "request-timeout": 30,
            "warnings": False,
        }
    )


# The checks: the only two things asserted.


def problems_of(method: str, response: schemathesis.Response) -> list[str]:
    """Why a response breaks "no 5xx, every error is a google.rpc.Status JSON" (empty: it
    doesn't)."""
    problems = []
    if response.status_code >= 500:
        problems.append("a server error")
    if response.status_code >= 400 and method.upper() != "HEAD":  # HEAD answers have no body
        problems += _status_problems(response)
    return problems


def _status_problems(response: schemathesis.Response) -> list[str]:
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        return [f"the error is not JSON (content-type {content_type!r})"]
    try:
        body = json.loads(response.content)
    except ValueError:
        return ["the error body does not parse as JSON"]
    if not isinstance(body, dict):
        return [f"the error body is a JSON {type(body).__name__}, not an object"]
    problems = []
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 16:
        problems.append(f"`code` is not a non-OK google.rpc.Code: {code!r}")
    if not isinstance(body.get("message"), str):
        problems.append(f"`message` is not a string: {body.get('message')!r}")
    details = body.get("details", [])
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("@type"), str) for d in details
    ):
        problems.append("`details` is not a list of Any objects with `@type`")
    unknown = set(body) - {"code", "message", "details"}
    if unknown:
        problems.append(f"fields google.rpc.Status does not have: {sorted(unknown)}")
    return problems


@dataclass
class Finding:
    """The first request of one kind of problem on one operation, and how often it recurred."""

    operation: str
    problems: list[str]
    text: str
    count: int = 1


def plausible(body: dict[str, Any], name: str) -> None:
    """Bring a generated body within the rules the document does not state (the
    descriptors carry no validation options, so the service checks rules the schema
    cannot show): at most one member of a oneof, a valid name, labels and block size,
    and none of the fields that need things this server does not have (images, KMS
    keys, placement groups, snapshot schedules)."""
    generation = body.get("hardwareGeneration")
    if isinstance(generation, dict) and len(generation) > 1:
        generation.pop("legacyFeatures", None)
    for key in ("diskPlacementPolicy", "imageId", "kmsKeyId", "snapshotScheduleIds"):
        body.pop(key, None)
    for key, value in (("name", name), ("labels", {"env": "st"}), ("blockSize", "4096")):
        if key in body:
            body[key] = value
    if isinstance(body.get("description"), str):
        body["description"] = body["description"][:256]


@contextmanager
def _generate_only() -> Iterator[None]:
    """Only Hypothesis' explicit and generate phases for the run. Without the target
    phase: schemathesis always steers fuzzing towards accepted inputs with
    ``hypothesis.target``, and the hill climbing that follows costs several times the
    examples themselves. Without shrinking: a failure is reported as first found, in
    bounded time. schemathesis takes phases from the loaded Hypothesis profile (when
    its own config leaves them alone), so one is loaded for the run."""
    previous = hypothesis.settings.get_current_profile_name()
    hypothesis.settings.register_profile(
        PROFILE,
        parent=hypothesis.settings.get_profile(previous),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    hypothesis.settings.load_profile(PROFILE)
    try:
        yield
    finally:
        hypothesis.settings.load_profile(previous)


# The live server and the resources the realistic cases aim at.


@dataclass
class Live:
    server: Server
    session: requests.Session = field(default_factory=requests.Session)
    disk: str = ""
    snapshot: str = ""
    operations: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    engine_errors: list[str] = field(default_factory=list)

    @classmethod
    @contextmanager
    def start(cls, data: Path) -> Iterator[Live]:
        data.mkdir(parents=True, exist_ok=True)
        live = cls(Server(data).start())
        try:
            live.seed()
            yield live
        finally:
            live.session.close()
            if live.server.proc is not None:
                assert live.server.stop() == 0

    @property
    def folder(self) -> str:
        return self.server.folder

    @property
    def log(self) -> Path:
        return self.server.data.parent / "server.log"

    def url(self, path: str) -> str:
        return str(self.server.info["rest"]) + path

    # Driving the server directly (seeding), with the bootstrap token.

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.session.request(
            method,
            self.url(path),
            json=body,
            headers={"Authorization": f"Bearer {self.server.token}", "Connection": "close"},
            timeout=30,
        )
        return response.status_code, response.json()

    def wait(self, operation: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not operation.get("done"):
            assert time.monotonic() < deadline, f"operation {operation['id']} did not finish"
            time.sleep(0.02)
            operation = self.api("GET", f"/operations/{operation['id']}")[1]
        assert "error" not in operation, operation
        return operation

    def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, operation = self.api("POST", path, {"folderId": self.folder, **body})
        if status == 429:  # the fuzzer filled a quota of the folder: make room
            self._purge()
            status, operation = self.api("POST", path, {"folderId": self.folder, **body})
        assert status == 200, (path, status, operation)
        self.operations.append(operation["id"])
        return self.wait(operation)

    def seed(self) -> None:
        """A READY disk and a READY snapshot of it to aim at (again, if one is gone)."""
        if not self.disk or self.api("GET", f"/compute/v1/disks/{self.disk}")[0] != 200:
            body = {"zoneId": ZONE, "typeId": DISK_TYPE, "size": str(4 * MiB)}
            self.disk = self._create("/compute/v1/disks", body)["metadata"]["diskId"]
        if not self.snapshot or self.api("GET", f"/compute/v1/snapshots/{self.snapshot}")[0] != 200:
            body = {"diskId": self.disk}
            self.snapshot = self._create("/compute/v1/snapshots", body)["metadata"]["snapshotId"]
        del self.operations[:-8]

    def _purge(self) -> None:
        for kind, keep in (("snapshots", self.snapshot), ("disks", self.disk)):
            listed = self.api("GET", f"/compute/v1/{kind}?folderId={self.folder}&pageSize=1000")[1]
            for item in listed[kind]:
                if item["id"] != keep:
                    status, operation = self.api("DELETE", f"/compute/v1/{kind}/{item['id']}")
                    if status == 200:
                        self.wait(operation)

    # The run.

    def run_schemathesis(self) -> None:
        schema = schemathesis.openapi.from_url(
            self.url("/openapi.json"), config=schema_config(self.url(""))
        )

        @schema.hook
        def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
            return self.realistic(case)

        @schema.hook
        def after_call(
            context: HookContext, case: Case[Any], response: schemathesis.Response
        ) -> None:
            self.judge(case, response)

        with _generate_only():
            for event in from_schema(schema).execute():
                if isinstance(event, events.NonFatalError):
                    self.engine_errors.append(f"{event.label}: {event.info.title}: {event.value!r}")
                elif isinstance(event, events.FatalError):
                    self.engine_errors.append(f"fatal: {event.exception!r}")

    def realistic(self, case: Case[Any]) -> Case[Any]:
        """Aim about half of the id-like values at things that exist; make half of the
        request bodies plausible where the document is looser than the server (see
        ``plausible``); choose the caller: the bootstrap token mostly, sometimes no
        token or an unknown one; send an ``Idempotency-Key`` with a quarter of the
        mutations, out of four keys. The choices are a function of the generated case, so
        the run stays deterministic."""
        fingerprint = repr(
            (case.method, case.path, case.path_parameters, case.query, case.body)
        ).encode()

        def pick(salt: str, among: int) -> int:
            return zlib.crc32(salt.encode() + fingerprint) % among

        real = {
            "folderId": self.folder,
            "destinationFolderId": self.folder,
            "diskId": self.disk,
            "snapshotId": self.snapshot,
            "zoneId": ZONE,
            "destinationZoneId": ZONE,
            "typeId": DISK_TYPE,
            "size": str(8 * MiB),
            "snapshot_id": self.snapshot,
            "disk_id": self.disk,
            "zone_id": ZONE,
            "disk_type_id": DISK_TYPE,
            "operation_id": self.operations[pick("operation", len(self.operations))],
            "resource_id": self.snapshot if "/snapshots/" in case.path else self.disk,
        }
        if isinstance(case.query, dict) and pick("plausible-query", 2) == 0:
            # a List as a client sends it: no fuzzed filter, order or token
            for key in ("filter", "orderBy", "pageToken"):
                case.query.pop(key, None)
            if "pageSize" in case.query:
                case.query["pageSize"] = 10
        body_is_plausible = isinstance(case.body, dict) and pick("plausible", 2) == 0
        if body_is_plausible and isinstance(case.body, dict):
            plausible(case.body, f"st{pick('name', 100000)}")
        for container in (case.path_parameters, case.query, case.body):
            if isinstance(container, dict):
                for key in list(container):
                    if key in real and (body_is_plausible or pick(key, 2) == 0):
                        container[key] = real[key]
        headers = case.headers
        headers.pop("Authorization", None)
        caller = pick("caller", 10)
        if caller < 8:
            headers["Authorization"] = f"Bearer {self.server.token}"
        elif caller == 8:
            headers["Authorization"] = f"Bearer {BOGUS_TOKEN}"
        if case.method.upper() != "GET" and pick("idempotency", 4) == 0:
            # few keys, so that some are reused by a different request
            headers["Idempotency-Key"] = f"st-{pick('key', 4)}"
        return case

    def judge(self, case: Case[Any], response: schemathesis.Response) -> None:
        label = case.operation.label
        method = response.request.method or case.method
        self.statuses.setdefault(label, Counter())[response.status_code] += 1
        problems = problems_of(method, response)
        if problems:
            key = (f"{method} {case.path}", f"{response.status_code} " + "; ".join(problems))
            if key in self.findings:
                self.findings[key].count += 1
            else:
                self.findings[key] = Finding(label, problems, self.describe(case, response))
        if method.upper() != "GET" and response.status_code == 200:
            self.settle(response)
            self.seed()  # put back what a successful mutation may have taken away

    def settle(self, response: schemathesis.Response) -> None:
        """Let the operation a mutation started finish, however it ends: work still in
        flight (a disk made from the snapshot, say) would make the next case's answer
        depend on timing (a Delete of that snapshot is FAILED_PRECONDITION meanwhile)."""
        try:
            operation = response.json()
        except ValueError:
            return
        if not isinstance(operation, dict) or "done" not in operation or "id" not in operation:
            return
        deadline = time.monotonic() + 30
        while not operation.get("done"):
            assert time.monotonic() < deadline, f"operation {operation['id']} did not finish"
            time.sleep(0.02)
            operation = self.api("GET", f"/operations/{operation['id']}")[1]

    def describe(self, case: Case[Any], response: schemathesis.Response) -> str:
        request = response.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode(errors="replace")
        headers = {
            k: ("Bearer <bootstrap token>" if v == f"Bearer {self.server.token}" else v)
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "idempotency-key")
        }
        request_id = response.headers.get("x-request-id", [""])[0]
        lines = [
            f"  request:  {request.method} {request.url}",
            f"            headers {headers}",
            f"            body {body!r}" if body else "            no body",
            f"  response: HTTP {response.status_code} "
            f"{response.headers.get('content-type', [''])[0]!r} "
            f"{response.content.decode(errors='replace')[:1000]!r}",
        ]
        if response.status_code >= 500 and request_id:
            lines.append(f"  server log for request {request_id}:\n{self.log_for(request_id)}")
        return "\n".join(lines)

    def log_for(self, request_id: str) -> str:
        """What the server logged for one request: the records that name it, with their
        traceback (the ``exception`` of a JSON record, or the lines that follow a
        plain-text one)."""
        lines = self.log.read_text(errors="replace").splitlines()
        found: list[str] = []
        for n, line in enumerate(lines):
            if request_id not in line:
                continue
            found.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                end = n + 1
                while end < len(lines) and not lines[end].startswith(("{", "20")):
                    found.append(lines[end])
                    end += 1
            else:
                if isinstance(record, dict) and record.get("exception"):
                    found += str(record["exception"]).splitlines()
        return "\n".join("    " + x for x in found) or "    (nothing logged under it)"

    def report(self) -> str:
        """One entry per kind of violation: where it happened, how often, one example."""
        kinds: dict[str, list[tuple[str, Finding]]] = {}
        for (where, what), finding in sorted(self.findings.items()):
            kinds.setdefault(what, []).append((where, finding))
        parts = [f"{len(kinds)} kinds of response break 'no 5xx, errors are Status JSON':"]
        for what, found in kinds.items():
            total = sum(f.count for _, f in found)
            parts.append(f"- HTTP {what}: {total} responses, on:")
            parts += [f"    {where} (x{finding.count})" for where, finding in found]
            parts.append("  first example:\n" + found[0][1].text)
        return "\n".join(parts)
