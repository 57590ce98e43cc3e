-- A booking is made by a citizen who proved a contact (a citizen session): the keyed
-- hash of that contact (privacy.contact_ref) is kept with it. Rows booked before this
-- migration have none; no session can ever match them.
ALTER TABLE appointments ADD COLUMN contact_ref text;

-- One live booking per patient, polyclinic and day *per contact*: a booking someone else
-- made for a NIK never blocks the NIK's holder (no lock-out). Rows whose NIK was erased
-- or that have no contact are left out (NULLs would never collide anyway; said here).
DROP INDEX appointments_one_per_patient_day;
CREATE UNIQUE INDEX appointments_one_per_contact_patient_day
    ON appointments (patient_nik, contact_ref, facility_code, polyclinic_code, date)
    WHERE status <> 'cancelled' AND patient_nik IS NOT NULL AND contact_ref IS NOT NULL;

-- What a contact holds (its active bookings, for the limits) and who else booked a NIK.
CREATE INDEX appointments_active_by_contact ON appointments (contact_ref, date) WHERE status = 'booked';
CREATE INDEX appointments_patient_day ON appointments (patient_nik, facility_code, polyclinic_code, date)
    WHERE status = 'booked';
