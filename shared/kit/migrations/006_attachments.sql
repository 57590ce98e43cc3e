-- Attachments (shared/kit/attachments.py): photos of complaints, documents of permit
-- applications. The bytes are in the service's attachment store under the id; this row
-- is what the service knows about them. `owner` is the case's public code once the case
-- claims the upload (NULL while staged); `erased_at` marks what an erasure or the staged
-- upload's expiry removed, `purged` that its bytes are gone from the store.
CREATE TABLE attachment (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('photo', 'document')),
    media_type  text        NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size_bytes  integer     NOT NULL CHECK (size_bytes > 0),
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    owner       text,
    label       text,
    created_at  timestamptz NOT NULL,
    erased_at   timestamptz,
    purged      boolean     NOT NULL DEFAULT false
);
CREATE INDEX attachment_owner ON attachment (owner) WHERE owner IS NOT NULL;
CREATE INDEX attachment_to_purge ON attachment (erased_at) WHERE erased_at IS NOT NULL AND NOT purged;
CREATE INDEX attachment_staged ON attachment (created_at) WHERE owner IS NULL AND erased_at IS NULL;
