-- Wake the relay from the database itself: one NOTIFY per inserting statement,
-- delivered at commit, instead of a separate round trip per event from the service.
CREATE FUNCTION sinergi_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sinergi_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION sinergi_outbox_notify();
