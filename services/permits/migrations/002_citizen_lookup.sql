-- A citizen's export and erasure find applications by the NIK, the citizen reference or
-- the contact a request gives (compared in lower case: shared/kit/citizen_data.py); each
-- condition has its index, so neither scans the table.
CREATE INDEX applications_applicant_nik ON applications (applicant_nik);
CREATE INDEX applications_citizen_ref ON applications (citizen_ref);
CREATE INDEX applications_applicant_phone_lower ON applications (lower(applicant_phone));
CREATE INDEX applications_applicant_email_lower ON applications (lower(applicant_email));
