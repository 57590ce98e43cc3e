-- Officers signed in to the workspace (/petugas) with the regency's identity provider.
-- A session is known by a hash of its cookie; its tokens (access, refresh, ID) are sealed
-- with a key derived from the cookie itself, so a read of this table gives nobody a live
-- session. It ends when idle too long or when its absolute lifetime is over (the portal's
-- settings), at sign-out, or when the provider refuses to renew its token.
CREATE TABLE officer_sessions (
    session_hash text PRIMARY KEY,
    subject text NOT NULL,
    name text NOT NULL,
    roles text[] NOT NULL,
    opd text,
    tokens text NOT NULL,
    access_expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX officer_sessions_seen ON officer_sessions (last_seen_at);
CREATE INDEX officer_sessions_created ON officer_sessions (created_at);
