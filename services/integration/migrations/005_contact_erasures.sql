-- An erasure names the keyed hashes of the contacts its request gave, beside the citizen
-- reference (id.sinergi.privacy.citizen.erased.v1 `contact_refs`): the view drops the
-- items keyed by those contacts (an anonymous complaint's) as it drops the citizen's, and
-- keeps each contact's latest erasure here too, so an item's older event read later (a
-- rebuild) is scrubbed. A contact reference's prefix (ct1_) never matches a citizen's.
COMMENT ON COLUMN erasures.citizen_ref IS 'a citizen reference (cr1_) or a contact reference (ct1_) erased';
