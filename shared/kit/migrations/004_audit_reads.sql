-- Reads of personal data are audited too (who read which record, from where), beside
-- the officers' actions.
ALTER TABLE audit_log
    ADD COLUMN action  text NOT NULL DEFAULT 'write' CHECK (action IN ('write', 'read')),
    ADD COLUMN address text;
CREATE INDEX audit_log_aggregates ON audit_log USING gin (aggregates);
