-- The citizen's answers between the pages of a long form (one question per page), kept
-- until the form is sent or the session has been idle too long. No case data: the draft
-- is deleted when the complaint is filed. The session is known by a hash of its cookie,
-- so a read of this table gives nobody a live session.
CREATE TABLE drafts (
    session_hash text PRIMARY KEY,
    journey text NOT NULL,
    answers jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drafts_idle ON drafts (updated_at);
