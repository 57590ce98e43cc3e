-- A patient's identity can be erased on request (UU PDP) once the visit is over.
ALTER TABLE appointments ALTER COLUMN patient_nik DROP NOT NULL;
