"""asyncpg queries for the health service's own tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple, TypeVar

import asyncpg

from services.health.domain import (
    FINAL_STATUSES,
    Appointment,
    DayListEntry,
    Doctor,
    Facility,
    Patient,
    Payment,
    Polyclinic,
    QueueEntry,
    Schedule,
    Session,
    Status,
    Task,
    TaskStamp,
    Ward,
)
from services.health.seed import Seed
from shared.kit.citizen_data import Citizen, CitizenTable
from shared.kit.sql import insert_sql, save_sql, select_sql, upsert_sql

T = TypeVar("T")
SEED_LOCK = 0x4845_414C  # "HEAL": one instance seeds at a time

# Columns named as the Appointment's fields and holding them as they are...
_APPOINTMENT_PLAIN = (
    "id",
    "booking_code",
    "facility_code",
    "kecamatan_code",
    "polyclinic_code",
    "doctor_code",
    "schedule_id",
    "date",
    "minutes_per_patient",
    "queue_number",
    "queue_code",
    "position",
    "new_patient",
    "citizen_ref",
    "locale",
    "contact_ref",
)
# ... its times, read in the regency's time zone ...
_APPOINTMENT_TIMES = ("session_start", "session_end", "estimated_at", "booked_at")
# ... and the patient's columns, by the Patient field each holds.
_PATIENT = {"nik": "patient_nik", "name": "patient_name", "phone": "patient_phone", "jkn_card": "jkn_card"}
# What changes of an appointment after booking.
_APPOINTMENT_STATE = ("status", "task_id", "task_at")
_APPOINTMENT_COLUMNS = (
    *_APPOINTMENT_PLAIN,
    *_APPOINTMENT_TIMES,
    "payment",
    *_PATIENT.values(),
    *_APPOINTMENT_STATE,
    "version",
)
# Reference data: the columns, named as the fields of the domain class.
_FACILITY = ("code", "name", "kind", "kecamatan_code", "address")
_POLYCLINIC = ("facility_code", "code", "name", "queue_prefix")
_DOCTOR = ("code", "name", "facility_code", "polyclinic_code")
# The columns of a schedule as written, named as its fields but for two (below).
_SCHEDULE_WRITTEN = (
    "doctor_code",
    "weekday",
    "start_time",
    "end_time",
    "minutes_per_patient",
    "quota_jkn",
    "quota_non_jkn",
    "active",
)
# The Schedule field of each column named otherwise.
_SCHEDULE_FIELD = {"start_time": "start", "end_time": "end"}
_SCHEDULE_COLUMNS = ", ".join(f"s.{column}" for column in ("id", *_SCHEDULE_WRITTEN))


def _schedule(row: Any) -> Schedule:
    return Schedule(**{_SCHEDULE_FIELD.get(c, c): row[c] for c in ("id", *_SCHEDULE_WRITTEN)})


# A session row's own columns (table alias x): its counters and the officer's change.
_SESSION_COLUMNS = (
    "coalesce(x.used_jkn, 0) AS used_jkn, coalesce(x.used_non_jkn, 0) AS used_non_jkn,"
    " coalesce(x.last_position, 0) AS last_position, coalesce(x.cancelled, false) AS cancelled,"
    " x.day_quota_jkn, x.day_quota_non_jkn, x.note"
)


def _session(schedule: Schedule, day: date, row: Any) -> Session:
    return Session(
        schedule,
        day,
        row["used_jkn"],
        row["used_non_jkn"],
        row["last_position"],
        cancelled=row["cancelled"],
        quota_jkn=row["day_quota_jkn"],
        quota_non_jkn=row["day_quota_non_jkn"],
        note=row["note"],
    )


def _task(value: int | None) -> Task | None:
    return Task(value) if value is not None else None


def _queue_entry(row: Any) -> dict[str, Any]:
    """A `QueueEntry`'s fields from an appointment's row (the board's, and the officers'
    day list's part of each entry)."""
    return {
        "queue_number": row["queue_number"],
        "queue_code": row["queue_code"],
        "status": Status(row["status"]),
        "task": _task(row["task_id"]),
        "task_at": row["task_at"],
        "minutes_per_patient": row["minutes_per_patient"],
    }


def _state(a: Appointment) -> tuple[Any, ...]:
    """The values of `_APPOINTMENT_STATE`."""
    return a.status.value, int(a.task) if a.task is not None else None, a.task_at


class Standing(NamedTuple):
    """What a booking finds under its contact's lock (`HealthRepository.standing`)."""

    held: str | None  # the contact's live booking of the same patient, polyclinic and day
    of_contact: int  # the contact's active bookings
    for_nik: int  # ... of them for the patient
    others: list[str]  # the patient's same bookings made with other contacts


class HealthRepository:
    def __init__(self, conn: asyncpg.Connection, tz: tzinfo) -> None:
        self.conn = conn
        self.tz = tz

    def _local(self, moment: datetime | None) -> datetime | None:
        return moment.astimezone(self.tz) if moment is not None else None

    # ----- reference data -------------------------------------------------------------

    async def lock_seeding(self) -> None:
        """Until the transaction ends, no other instance seeds."""
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK)

    async def is_empty(self) -> bool:
        return not await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM facilities)")

    async def load_seed(self, seed: Seed) -> None:
        for f in seed.facilities:
            await self.upsert_facility(f)
        for p in seed.polyclinics:
            await self.upsert_polyclinic(p)
        for d in seed.doctors:
            await self.upsert_doctor(d)
        for s in seed.schedules:
            await self.upsert_schedule(s)

    async def _one(self, kind: type[T], query: str, *args: Any) -> T | None:
        """The row `query` finds as a `kind` (a reference-data class named as the columns)."""
        row = await self.conn.fetchrow(query, *args)
        return kind(**dict(row)) if row else None

    async def _all(self, kind: type[T], query: str, *args: Any) -> list[T]:
        return [kind(**dict(row)) for row in await self.conn.fetch(query, *args)]

    async def _codes(self, where: str, *args: Any) -> list[str]:
        """The booking codes of the appointments `where` (a condition and its order) selects."""
        query = f"SELECT booking_code FROM appointments WHERE {where}"
        return [r["booking_code"] for r in await self.conn.fetch(query, *args)]

    async def _put(self, table: str, columns: Sequence[str], key: Sequence[str], item: Any) -> None:
        await self.conn.execute(upsert_sql(table, columns, key), *(getattr(item, c) for c in columns))

    async def facilities(self) -> list[Facility]:
        return await self._all(
            Facility, f"SELECT {', '.join(_FACILITY)} FROM facilities ORDER BY kind DESC, code"
        )

    async def facility(self, code: str) -> Facility | None:
        return await self._one(
            Facility, f"SELECT {', '.join(_FACILITY)} FROM facilities WHERE code = $1", code
        )

    async def upsert_facility(self, f: Facility) -> None:
        await self._put("facilities", _FACILITY, ("code",), f)

    async def polyclinics(self, facility_code: str) -> list[Polyclinic]:
        return await self._all(
            Polyclinic,
            f"SELECT {', '.join(_POLYCLINIC)} FROM polyclinics WHERE facility_code = $1 ORDER BY code",
            facility_code,
        )

    async def polyclinic(self, facility_code: str, code: str) -> Polyclinic | None:
        return await self._one(
            Polyclinic,
            f"SELECT {', '.join(_POLYCLINIC)} FROM polyclinics WHERE facility_code = $1 AND code = $2",
            facility_code,
            code,
        )

    async def facility_and_polyclinic(
        self, facility_code: str, code: str
    ) -> tuple[Facility | None, Polyclinic | None]:
        """The facility and its polyclinic `code` in one read (None for what is not found;
        no polyclinic without its facility)."""
        columns = [f"f.{c} AS f_{c}" for c in _FACILITY] + [f"p.{c} AS p_{c}" for c in _POLYCLINIC]
        row = await self.conn.fetchrow(
            f"SELECT {', '.join(columns)} FROM facilities f LEFT JOIN polyclinics p"
            " ON p.facility_code = f.code AND p.code = $2 WHERE f.code = $1",
            facility_code,
            code,
        )
        if row is None:
            return None, None
        facility = Facility(**{c: row[f"f_{c}"] for c in _FACILITY})
        if row["p_code"] is None:
            return facility, None
        return facility, Polyclinic(**{c: row[f"p_{c}"] for c in _POLYCLINIC})

    async def upsert_polyclinic(self, p: Polyclinic) -> None:
        await self._put("polyclinics", _POLYCLINIC, ("facility_code", "code"), p)

    async def doctors(self, facility_code: str) -> list[Doctor]:
        return await self._all(
            Doctor,
            f"SELECT {', '.join(_DOCTOR)} FROM doctors WHERE facility_code = $1 ORDER BY polyclinic_code, code",
            facility_code,
        )

    async def doctor(self, code: str) -> Doctor | None:
        return await self._one(Doctor, f"SELECT {', '.join(_DOCTOR)} FROM doctors WHERE code = $1", code)

    async def upsert_doctor(self, d: Doctor) -> None:
        await self._put("doctors", _DOCTOR, ("code",), d)

    async def schedules_of_facility(self, facility_code: str) -> list[Schedule]:
        rows = await self.conn.fetch(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules s JOIN doctors d ON d.code = s.doctor_code"
            " WHERE d.facility_code = $1 ORDER BY s.doctor_code, s.weekday",
            facility_code,
        )
        return [_schedule(r) for r in rows]

    async def schedules_of_polyclinic(
        self, facility_code: str, polyclinic_code: str, doctor_code: str | None = None
    ) -> list[Schedule]:
        rows = await self.conn.fetch(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules s JOIN doctors d ON d.code = s.doctor_code"
            " WHERE d.facility_code = $1 AND d.polyclinic_code = $2"
            " AND ($3::text IS NULL OR d.code = $3) ORDER BY s.id",
            facility_code,
            polyclinic_code,
            doctor_code,
        )
        return [_schedule(r) for r in rows]

    async def upsert_schedule(self, s: Schedule) -> Schedule:
        row = await self.conn.fetchrow(
            upsert_sql("schedules", _SCHEDULE_WRITTEN, ("doctor_code", "weekday"), returning="id"),
            *(getattr(s, _SCHEDULE_FIELD.get(c, c)) for c in _SCHEDULE_WRITTEN),
        )
        return Schedule(**{**s.__dict__, "id": row["id"]})

    # ----- sessions and queue numbers -------------------------------------------------

    async def lock_sessions(self, schedules: Sequence[Schedule], day: date) -> list[Session]:
        """The sessions of `schedules` on `day`, created if new, row-locked (in id order,
        so two changes of the same sessions never deadlock), returned in the order of
        `schedules`."""
        ids = await self.open_sessions(schedules, day)
        rows = await self.conn.fetch(
            f"SELECT x.schedule_id, {_SESSION_COLUMNS} FROM sessions x"
            " WHERE x.schedule_id = ANY($1::bigint[]) AND x.date = $2 ORDER BY x.schedule_id FOR UPDATE",
            ids,
            day,
        )
        by_id = {r["schedule_id"]: r for r in rows}
        return [_session(s, day, by_id[s.id]) for s in schedules]

    async def open_sessions(self, schedules: Sequence[Schedule], day: date) -> list[int]:
        """Make the rows of the sessions of `schedules` on `day` that do not exist yet
        (an existing row is neither changed nor locked); their schedule ids, sorted."""
        ids = sorted(s.id for s in schedules if s.id is not None)
        await self.conn.execute(
            "INSERT INTO sessions (schedule_id, date) SELECT unnest($1::bigint[]), $2"
            " ON CONFLICT (schedule_id, date) DO NOTHING",
            ids,
            day,
        )
        return ids

    async def take_place(
        self, schedule_id: int, day: date, payment: Payment, facility_code: str, polyclinic_code: str
    ) -> tuple[int, int] | None:
        """Take a place of `payment` in the session, if it has room, and the polyclinic's
        next queue number, in one statement: (position, queue number), or None when the
        session is full or cancelled. The session's row stays locked until the commit, so
        a booking makes this its last statement but the appointment's and its event's
        inserts: the counts stay exact however many book at once, and the lock is held
        for the fewest round trips. A session that is full takes no lock. The room test
        is the domain's `Session.remaining`, which cannot run inside the statement."""
        kind = payment.value  # the suffix of its counter's and quotas' columns
        row = await self.conn.fetchrow(
            "WITH taken AS ("
            f" UPDATE sessions x SET used_{kind} = x.used_{kind} + 1, last_position = x.last_position + 1"
            " FROM schedules s WHERE s.id = x.schedule_id AND x.schedule_id = $1 AND x.date = $2"
            f" AND NOT x.cancelled AND x.used_{kind} < coalesce(x.day_quota_{kind}, s.quota_{kind})"
            " RETURNING x.last_position),"
            " numbered AS (INSERT INTO queue_counters (facility_code, polyclinic_code, date, last_number)"
            " SELECT $3, $4, $2, 1 FROM taken ON CONFLICT (facility_code, polyclinic_code, date)"
            " DO UPDATE SET last_number = queue_counters.last_number + 1 RETURNING last_number)"
            " SELECT taken.last_position, numbered.last_number FROM taken, numbered",
            schedule_id,
            day,
            facility_code,
            polyclinic_code,
        )
        return None if row is None else (row["last_position"], row["last_number"])

    async def lock_session(self, schedule_id: int, day: date) -> Session | None:
        row = await self.conn.fetchrow(
            f"SELECT {_SCHEDULE_COLUMNS}, {_SESSION_COLUMNS}"
            " FROM sessions x JOIN schedules s ON s.id = x.schedule_id"
            " WHERE x.schedule_id = $1 AND x.date = $2 FOR UPDATE OF x",
            schedule_id,
            day,
        )
        return _session(_schedule(row), day, row) if row is not None else None

    async def save_session(self, s: Session) -> None:
        await self.conn.execute(
            "UPDATE sessions SET used_jkn=$3, used_non_jkn=$4, last_position=$5, cancelled=$6,"
            " day_quota_jkn=$7, day_quota_non_jkn=$8, note=$9 WHERE schedule_id=$1 AND date=$2",
            s.schedule.id,
            s.date,
            s.used_jkn,
            s.used_non_jkn,
            s.last_position,
            s.cancelled,
            s.quota_jkn,
            s.quota_non_jkn,
            s.note,
        )

    async def session_bookings(self, schedule_id: int, day: date) -> list[str]:
        """Booking codes of a session's visits not over yet, in queue order."""
        return await self._codes(
            "schedule_id = $1 AND date = $2 AND status <> ALL($3::text[]) ORDER BY queue_number",
            schedule_id,
            day,
            [s.value for s in FINAL_STATUSES],
        )

    async def changed_sessions(self, facility_code: str, since: date) -> list[dict[str, Any]]:
        """The facility's sessions an officer changed, from `since` on, by date."""
        rows = await self.conn.fetch(
            "SELECT s.doctor_code AS doctor, x.date, x.cancelled, x.day_quota_jkn AS quota_jkn,"
            " x.day_quota_non_jkn AS quota_non_jkn, x.note AS reason"
            " FROM sessions x JOIN schedules s ON s.id = x.schedule_id JOIN doctors d ON d.code = s.doctor_code"
            " WHERE d.facility_code = $1 AND x.date >= $2"
            " AND (x.cancelled OR x.day_quota_jkn IS NOT NULL OR x.day_quota_non_jkn IS NOT NULL)"
            " ORDER BY x.date, s.doctor_code",
            facility_code,
            since,
        )
        return [dict(r) for r in rows]

    async def sessions_on(self, schedule_ids: Sequence[int], day: date) -> dict[int, Session]:
        rows = await self.conn.fetch(
            f"SELECT {_SCHEDULE_COLUMNS}, {_SESSION_COLUMNS}"
            " FROM schedules s LEFT JOIN sessions x ON x.schedule_id = s.id AND x.date = $2"
            " WHERE s.id = ANY($1::bigint[])",
            list(schedule_ids),
            day,
        )
        return {r["id"]: _session(_schedule(r), day, r) for r in rows}

    # ----- appointments ---------------------------------------------------------------

    async def add(self, a: Appointment) -> None:
        await self.conn.execute(
            insert_sql("appointments", _APPOINTMENT_COLUMNS),
            *(getattr(a, name) for name in (*_APPOINTMENT_PLAIN, *_APPOINTMENT_TIMES)),
            a.payment.value,
            *(getattr(a.patient, name) for name in _PATIENT),
            *_state(a),
            a.version,
        )
        await self._save_tasks(a)

    async def save(self, a: Appointment) -> None:
        await self.conn.execute(save_sql("appointments", _APPOINTMENT_STATE), a.id, *_state(a))
        await self._save_tasks(a)

    async def _save_tasks(self, a: Appointment) -> None:
        if a.new_tasks:
            await self.conn.executemany(
                "INSERT INTO appointment_tasks (appointment_id, task_id, at, actor) VALUES ($1,$2,$3,$4)",
                [(a.id, int(t.task), t.at, t.actor) for t in a.new_tasks],
            )
            a.new_tasks.clear()

    async def get(self, booking_code: str, *, for_update: bool = False) -> Appointment | None:
        query = select_sql("appointments", _APPOINTMENT_COLUMNS, "booking_code", for_update=for_update)
        row = await self.conn.fetchrow(query, booking_code)
        if row is None:
            return None
        tasks = await self.conn.fetch(
            "SELECT task_id, at, actor FROM appointment_tasks WHERE appointment_id = $1 ORDER BY at",
            row["id"],
        )
        return self._to_domain(row, tasks)

    def _to_domain(self, row: Any, tasks: list[Any]) -> Appointment:
        return Appointment(
            **{name: row[name] for name in _APPOINTMENT_PLAIN},
            **{name: self._local(row[name]) for name in _APPOINTMENT_TIMES},
            payment=Payment(row["payment"]),
            patient=Patient(**{name: row[column] for name, column in _PATIENT.items()}),
            status=Status(row["status"]),
            task=_task(row["task_id"]),
            task_at=self._local(row["task_at"]),
            version=row["version"],
            tasks=[TaskStamp(Task(t["task_id"]), self._local(t["at"]), t["actor"]) for t in tasks],  # type: ignore[arg-type]
        )

    async def lock_contact(self, contact_ref: str) -> None:
        """Serialise one contact's bookings until the transaction ends, so its limits
        are counted exactly under concurrent requests."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", contact_ref)

    async def standing(
        self, nik: str, contact_ref: str, facility_code: str, polyclinic_code: str, day: date, today: date
    ) -> Standing:
        """Where the contact's booking of the patient at the polyclinic on `day` stands, in
        one read: its live booking of it (the unique index
        appointments_one_per_contact_patient_day), the contact's own active bookings (booked,
        for `today` or later: all, and those for `nik`; no one else's are counted) and the
        patient's bookings of it made with another contact (or before contacts were kept),
        still booked, oldest first."""
        row = await self.conn.fetchrow(
            "SELECT (SELECT booking_code FROM appointments WHERE patient_nik = $1 AND contact_ref = $2"
            "  AND facility_code = $3 AND polyclinic_code = $4 AND date = $5 AND status <> $6) AS held,"
            " h.of_contact, h.for_nik,"
            " ARRAY(SELECT booking_code FROM appointments WHERE patient_nik = $1"
            "  AND contact_ref IS DISTINCT FROM $2 AND facility_code = $3 AND polyclinic_code = $4"
            "  AND date = $5 AND status = $7 ORDER BY booked_at) AS others"
            " FROM (SELECT count(*) AS of_contact, count(*) FILTER (WHERE patient_nik = $1) AS for_nik"
            "  FROM appointments WHERE contact_ref = $2 AND status = $7 AND date >= $8) AS h",
            nik,
            contact_ref,
            facility_code,
            polyclinic_code,
            day,
            Status.CANCELLED,
            Status.BOOKED,
            today,
        )
        return Standing(row["held"], int(row["of_contact"]), int(row["for_nik"]), list(row["others"]))

    async def next_waiting(self, facility_code: str, polyclinic_code: str, day: date) -> str | None:
        """Booking code of the lowest queue number waiting for the polyclinic (task 3),
        locked; one being called by another officer right now is skipped."""
        return await self.conn.fetchval(
            "SELECT booking_code FROM appointments WHERE facility_code = $1 AND polyclinic_code = $2"
            " AND date = $3 AND task_id = $4 ORDER BY queue_number LIMIT 1 FOR UPDATE SKIP LOCKED",
            facility_code,
            polyclinic_code,
            day,
            int(Task.POLI_WAIT),
        )

    async def day_list(self, facility_code: str, polyclinic_code: str, day: date) -> list[DayListEntry]:
        """The polyclinic's appointments on `day` in queue order, with when each checked in
        (each also the board's entry: the board is drawn from them)."""
        rows = await self.conn.fetch(
            "SELECT a.booking_code, a.queue_number, a.queue_code, a.status, a.task_id, a.task_at,"
            " a.minutes_per_patient, a.estimated_at, a.payment, a.new_patient, t.at AS checked_in_at"
            " FROM appointments a LEFT JOIN appointment_tasks t"
            " ON t.appointment_id = a.id AND t.task_id = $4"
            " WHERE a.facility_code = $1 AND a.polyclinic_code = $2 AND a.date = $3"
            " ORDER BY a.queue_number",
            facility_code,
            polyclinic_code,
            day,
            int(Task.ADMISSION_WAIT),
        )
        return [
            DayListEntry(
                **_queue_entry(r),
                booking_code=r["booking_code"],
                checked_in_at=r["checked_in_at"],
                estimated_at=r["estimated_at"],
                payment=Payment(r["payment"]),
                new_patient=r["new_patient"],
            )
            for r in rows
        ]

    async def queue_entries(self, facility_code: str, polyclinic_code: str, day: date) -> list[QueueEntry]:
        rows = await self.conn.fetch(
            "SELECT queue_number, queue_code, status, task_id, task_at, minutes_per_patient"
            " FROM appointments WHERE facility_code = $1 AND polyclinic_code = $2 AND date = $3",
            facility_code,
            polyclinic_code,
            day,
        )
        return [QueueEntry(**_queue_entry(r)) for r in rows]

    async def due_no_shows(self, ended_before: datetime, limit: int) -> list[str]:
        return await self._codes(
            "status = $3 AND session_end <= $1 ORDER BY session_end LIMIT $2",
            ended_before,
            limit,
            Status.BOOKED,
        )

    async def waiting_by_polyclinic(self, day: date) -> list[tuple[str, str, int]]:
        rows = await self.conn.fetch(
            "SELECT facility_code, polyclinic_code, count(*) FILTER (WHERE task_id = $2) AS n"
            " FROM appointments WHERE date = $1 GROUP BY 1, 2",
            day,
            int(Task.POLI_WAIT),
        )
        return [(r["facility_code"], r["polyclinic_code"], r["n"]) for r in rows]

    # ----- wards ----------------------------------------------------------------------

    async def ward(self, facility: Facility, code: str, *, for_update: bool = False) -> Ward | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            "SELECT id, code, name, bed_class, total, occupied, updated_at, version FROM wards"
            f" WHERE facility_code = $1 AND code = $2{lock}",
            facility.code,
            code,
        )
        if row is None:
            return None
        return Ward(
            id=row["id"],
            facility_code=facility.code,
            kecamatan_code=facility.kecamatan_code,
            code=row["code"],
            name=row["name"],
            bed_class=row["bed_class"],
            total=row["total"],
            occupied=row["occupied"],
            updated_at=self._local(row["updated_at"]),
            version=row["version"],
        )

    async def save_ward(self, w: Ward) -> None:
        await self.conn.execute(
            "INSERT INTO wards (id, facility_code, code, name, bed_class, total, occupied, updated_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (facility_code, code) DO UPDATE SET"
            " name=EXCLUDED.name, bed_class=EXCLUDED.bed_class, total=EXCLUDED.total,"
            " occupied=EXCLUDED.occupied, updated_at=EXCLUDED.updated_at, version=wards.version+1",
            w.id,
            w.facility_code,
            w.code,
            w.name,
            w.bed_class,
            w.total,
            w.occupied,
            w.updated_at,
        )

    async def wards(self, facility_code: str | None = None) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT w.facility_code, f.name AS facility_name, w.code, w.name, w.bed_class, w.total,"
            " w.occupied, w.total - w.occupied AS available, w.updated_at"
            " FROM wards w JOIN facilities f ON f.code = w.facility_code"
            " WHERE $1::text IS NULL OR w.facility_code = $1 ORDER BY w.facility_code, w.code",
            facility_code,
        )
        return [dict(r) for r in rows]


class CitizenRecords(CitizenTable, table="appointments", nik_column="patient_nik", order_by="booked_at"):
    """A patient's appointments, for export and erasure.

    Erasure anonymises finished, cancelled and no-show appointments (NIK, name, phone,
    contact reference, JKN card removed; the citizen link replaced by a random one, so visit statistics
    stay); appointments still in progress are kept until they end and are reported."""

    columns = (
        "booking_code, facility_code, polyclinic_code, date, payment, status, task_id,"
        " booked_at, patient_name, patient_phone, jkn_card"
    )
    # An export finds a booking by the keyed hash of the contact that made it; an erasure
    # by the patient's NIK alone (a booking made for someone else is that patient's).
    contact_ref = "contact_ref"

    async def erase(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, int]:
        erased = await self.anonymise(
            conn,
            citizen,
            "patient_nik = NULL, patient_name = NULL, patient_phone = NULL, jkn_card = NULL, contact_ref = NULL",
            FINAL_STATUSES,
            row_id="id",
        )
        kept = await self.count(conn, citizen)  # those left are still in progress
        return {"appointments": erased, "appointments_in_progress_kept": kept}
