-- A citizen's export and erasure find complaints by the NIK, the citizen reference or
-- the contact a request gives (compared in lower case: shared/kit/citizen_data.py); each
-- condition has its index, so neither scans the table.
CREATE INDEX complaints_reporter_nik ON complaints (reporter_nik);
CREATE INDEX complaints_citizen_ref ON complaints (citizen_ref);
CREATE INDEX complaints_reporter_phone_lower ON complaints (lower(reporter_phone));
CREATE INDEX complaints_reporter_email_lower ON complaints (lower(reporter_email));
