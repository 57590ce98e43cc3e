-- The facility a health officer's token names (claim `facility`): the clinic workspace
-- opens on it. NULL for every other officer.
ALTER TABLE officer_sessions ADD COLUMN facility text;
