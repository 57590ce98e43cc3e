-- Citizens whose personal data a service erased on request (UU PDP 27/2022), from
-- id.sinergi.privacy.citizen.erased.v1: the view drops the citizen reference (and the
-- titles) of everything up to the latest erasure, also when older events arrive later
-- (a rebuild re-reads events that still carry the reference).
CREATE TABLE erasures (
    citizen_ref  text PRIMARY KEY,
    erased_at    timestamptz NOT NULL   -- the latest erasure
);
