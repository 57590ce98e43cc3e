-- A citizen may be halfway through Lapor and Antrean at once, and be signed in with a
-- one-time code besides: one draft per session and journey. The sign-in's citizen session
-- is sealed with a key from the cookie itself (which the table only knows by a hash).
ALTER TABLE drafts DROP CONSTRAINT drafts_pkey;
ALTER TABLE drafts ADD PRIMARY KEY (session_hash, journey);
