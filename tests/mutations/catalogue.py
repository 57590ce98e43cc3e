"""The named mutations: each breaks one documented guarantee on purpose, and names the
tests that docs/architecture.md and docs/reliability.md cite for that guarantee.
`make test-mutations` applies each to a copy of the tree and expects those tests to fail.

A mutation is anchored on the SQL or the name that carries its guarantee (the advisory
lock query, the inbox insert's result, the unit of work's transaction), not on line
numbers, so it keeps applying while code moves around it. If a refactor removes an
anchor, `tests/unit/test_mutation_catalogue.py` fails: rewrite the mutation against the
new code, never delete it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    path: str
    find: str  # must occur exactly once in the file
    replace: str


@dataclass(frozen=True)
class Mutation:
    name: str
    guarantee: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids or paths, relative to the repository


UOW = "shared/kit/uow.py"
UOW_BLOCK = """    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, origin)
        yield uow
        await audit.record(conn, uow.subjects, uow.event_types)
"""


def uow_split(inside: str, after: str) -> Edit:
    """The unit of work's block rewritten as a transaction followed by statements that
    run after its commit."""
    return Edit(
        UOW,
        UOW_BLOCK,
        "    async with pool.acquire() as conn:\n        async with conn.transaction():\n"
        "            uow = UnitOfWork(conn, origin)\n            yield uow\n" + inside + after,
    )


UOW_TESTS = ("tests/integration/test_unit_of_work.py",)
KIT_CONSUMER = "shared/kit/consumer.py"
INBOX_TESTS = (
    "tests/integration/test_kit_consumer.py::test_a_duplicate_in_a_later_batch_or_after_a_restart_takes_no_effect",
    "tests/integration/test_kit_consumer.py::test_an_event_delivered_twice_takes_effect_once",
)
FILING_ON_THE_BUS = (
    "tests/integration/test_complaints_service.py::test_filing_publishes_exactly_one_structured_cloudevent",
)
ERASURE_OF_COMPLAINTS = (
    "tests/integration/test_complaints_service.py::test_a_citizen_can_be_exported_and_erased",
)
TEXT_SHREDDING = (
    "tests/integration/test_crypto_shredding.py::"
    "test_what_the_citizen_wrote_is_read_by_the_view_until_the_erasure_and_never_after"
)
# The role matrix of the one service each role mutation breaks, with development tokens:
# which roles a route takes is the service's rule, whoever issued the token (the provider
# variant would start Keycloak and the other services' matrices would run first, for
# nothing the mutation can change).
ROLE_MATRIX = "tests/security/test_role_matrix.py::test_every_route_matches_the_access_policy"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "uow-without-transaction",
        "state change and event commit together",
        (
            Edit(
                UOW,
                "    async with pool.acquire() as conn, conn.transaction():\n",
                "    async with pool.acquire() as conn:\n",
            ),
        ),
        UOW_TESTS,
    ),
    Mutation(
        "outbox-insert-after-commit",
        "state change and event commit together",
        (
            Edit(
                UOW,
                "        if len(envelopes) == 1:\n            await add_event(self.conn, envelopes[0], self.origin.topic)\n"
                "        elif envelopes:\n            await add_events(self.conn, envelopes, self.origin.topic)\n",
                "        self.late.extend(envelopes)\n",
            ),
            Edit(
                UOW, "        self.emitted = 0\n", "        self.emitted = 0\n        self.late: list = []\n"
            ),
            uow_split(
                "            await audit.record(conn, uow.subjects, uow.event_types)\n",
                "        await add_events(conn, uow.late, origin.topic)\n",
            ),
        ),
        UOW_TESTS,
    ),
    Mutation(
        "audit-after-commit",
        "an officer action and its audit row commit together",
        (uow_split("", "        await audit.record(conn, uow.subjects, uow.event_types)\n"),),
        UOW_TESTS,
    ),
    Mutation(
        "relay-lock-always-granted",
        "one relay per service",
        (
            Edit(
                "shared/kit/outbox.py",
                '"SELECT pg_try_advisory_lock($1)", RELAY_LOCK',
                '"SELECT $1::bigint IS NOT NULL", RELAY_LOCK',
            ),
        ),
        ("tests/integration/test_outbox_relay.py",),
    ),
    Mutation(
        "inbox-ignored-in-batches",
        "consumers idempotent: a redelivered event takes no effect",
        (
            Edit(
                KIT_CONSUMER,
                'fresh = {row["event_id"] for row in rows}',
                "fresh = {e.envelope.id for _, e in parsed}",
            ),
        ),
        INBOX_TESTS,
    ),
    Mutation(
        "inbox-ignored-per-record",
        "consumers idempotent: a redelivered event takes no effect",
        (
            Edit(
                KIT_CONSUMER,
                "            if not fresh:\n                self.metrics.duplicates.labels(self.name).inc()\n                return\n",
                "            if fresh is False:\n                return\n",
            ),
        ),
        INBOX_TESTS,
    ),
    Mutation(
        "offsets-committed-before-effects",
        "offsets committed after effects",
        (Edit(KIT_CONSUMER, "ack_policy=AckPolicy.NACK_ON_ERROR,", "ack_policy=AckPolicy.ACK_FIRST,"),),
        (
            "tests/integration/test_kit_consumer.py::test_a_database_outage_mid_batch_rewinds_it_and_the_event_is_applied_once",
        ),
    ),
    Mutation(
        "opd-officer-may-reject",
        "officer routes accept only their documented roles",
        (
            Edit(
                "services/complaints/api.py",
                "async def reject(tracking_code: str, body: RejectIn, ctx: Ctx, officer: Coordinator)",
                "async def reject(tracking_code: str, body: RejectIn, ctx: Ctx, officer: AnyOfficer)",
            ),
        ),
        (f"{ROLE_MATRIX}[complaints-development]",),
    ),
    Mutation(
        "timeline-lookup-without-role",
        "officer routes accept only their documented roles",
        (
            Edit(
                "services/integration/api.py",
                "    body: TimelineLookupIn,\n    request: Request,\n    _: Annotated[Officer, Depends(officer)],\n",
                "    body: TimelineLookupIn,\n    request: Request,\n",
            ),
        ),
        (f"{ROLE_MATRIX}[integration-development]",),
    ),
    Mutation(
        "log-redaction-filter-removed",
        "no personal data in logs",
        (Edit("shared/kit/logs.py", "    handler.addFilter(redacting_filter())\n", ""),),
        ("tests/unit/test_logging.py",),
    ),
    Mutation(
        "log-redaction-misses-tracebacks",
        "no personal data in logs",
        (
            Edit(
                "shared/kit/logs.py",
                "            record.exc_text = _TRACEBACKS.formatException(record.exc_info)\n            record.exc_info = None\n",
                "            pass\n",
            ),
        ),
        ("tests/unit/test_logging.py",),
    ),
    Mutation(
        "contact-in-clear-on-the-bus",
        "no NIK, phone or email in clear on the bus",
        (
            Edit(
                "shared/kit/privacy.py",
                "token = Fernet(key.encode()).encrypt(self.to_seal[1]).decode()",
                "token = self.to_seal[1].decode()",
            ),
        ),
        FILING_ON_THE_BUS,
    ),
    Mutation(
        "citizens-text-in-clear-on-the-bus",
        "what a citizen wrote travels sealed with their text key, never in clear",
        (
            Edit(
                "shared/kit/privacy.py",
                "token = Fernet(text_key(key).encode()).encrypt(self.to_seal[1]).decode()",
                "token = self.to_seal[1].decode()",
            ),
        ),
        (TEXT_SHREDDING,),
    ),
    Mutation(
        "erasure-keeps-the-data-key",
        "an erasure makes every sealed copy of the citizen's contact on the log unreadable",
        (
            Edit(
                "shared/kit/citizen_data.py",
                "        await data_keys.destroy(uow.conn, citizen.key_subjects)\n",
                "",
            ),
        ),
        (
            "tests/integration/test_crypto_shredding.py::test_erasure_shreds_every_sealed_copy_of_the_contact",
            TEXT_SHREDDING,
        ),
    ),
    Mutation(
        "citizen-ref-is-the-nik",
        "no NIK, phone or email in clear on the bus",
        (
            Edit(
                "shared/kit/privacy.py",
                "return CITIZEN_REF_PREFIX + digest[:32]",
                "return CITIZEN_REF_PREFIX + nik",
            ),
        ),
        FILING_ON_THE_BUS,
    ),
    Mutation(
        "erasure-keeps-what-the-reporter-wrote",
        "an erasure removes what the citizen wrote and where (a complaint's description and point)",
        (
            Edit(
                "services/complaints/repository.py",
                '''f" citizen_ref = NULL, title = {self.arg(1)}, description = {self.arg(1)}, lat = NULL, lon = NULL,"''',
                '''f" citizen_ref = NULL, title = {self.arg(1)}, description = description, lat = lat, lon = lon,"''',
            ),
        ),
        ERASURE_OF_COMPLAINTS,
    ),
    Mutation(
        "erasure-misses-contact-only-complaints",
        "an erasure reaches complaints filed without a NIK, by the contact the request gives",
        (
            Edit(
                "services/complaints/repository.py",
                'contact_columns=("reporter_phone", "reporter_email"),',
                "contact_columns=(),",
            ),
        ),
        ERASURE_OF_COMPLAINTS,
    ),
    Mutation(
        "erasure-event-without-contacts",
        "an erasure reaches the notification service's and the view's records of a contact-only"
        " citizen (an anonymous complaint's messages, a one-time code's), by the contacts' keyed hashes",
        (
            Edit(
                "shared/kit/citizen_data.py",
                "            contact_refs=list(citizen.contact_refs),\n",
                "",
            ),
        ),
        (
            "tests/integration/test_erasure_forensics.py::test_nothing_of_the_erased_citizen_is_left[databases]",
        ),
    ),
    Mutation(
        "permit-erasure-keeps-every-document",
        "an issued permit keeps only the documents its type retains",
        (
            Edit(
                "services/permits/repository.py",
                "conn, citizen, _HELD_BY_LAW, retained, self.retention",
                "conn, citizen, [], retained, self.retention",
            ),
        ),
        (
            "tests/integration/test_permit_documents.py::test_erasure_leaves_an_issued_permit_only_what_its_type_retains",
        ),
    ),
    Mutation(
        "dead-letter-quotes-the-error",
        "a dead letter never carries clear personal data (an error quoting a field)",
        (Edit(KIT_CONSUMER, "describe_error(last_error)", "repr(last_error)"),),
        (
            "tests/integration/test_kit_consumer.py::test_a_failing_handler_dead_letters_and_the_partition_keeps_flowing",
        ),
    ),
    Mutation(
        "database-outage-answers-500",
        "database outage: 503 with Retry-After, nothing half-saved",
        (
            Edit(
                "shared/kit/http.py",
                '            {"detail": "service temporarily unavailable; nothing was saved, please retry"},\n            status_code=503,',
                '            {"detail": "service temporarily unavailable; nothing was saved, please retry"},\n            status_code=500,',
            ),
        ),
        ("tests/integration/test_database_restart.py",),
    ),
    Mutation(
        "booking-takes-a-place-without-room",
        "a session's places are booked exactly once, however many book at once",
        (
            Edit(
                "services/health/repository.py",
                ' AND NOT x.cancelled AND x.used_{kind} < coalesce(x.day_quota_{kind}, s.quota_{kind})"',
                ' AND NOT x.cancelled"',
            ),
        ),
        ("tests/integration/test_booking_rush.py",),
    ),
)
