-- A complaint's title as its event carries it: sealed with the citizen's text key (the
-- token, the key's id and the service that answers for it). The view keeps no title of
-- today's events in clear: the pages open it while the key exists (shared/kit/data_keys.py),
-- so once the citizen is erased no copy here, in a backup or in a rebuild can be read.
-- Dropped with the citizen reference on erasure, as the clear `title` of older events is.
ALTER TABLE items ADD COLUMN sealed_title text, ADD COLUMN title_key_id text, ADD COLUMN title_producer text;
