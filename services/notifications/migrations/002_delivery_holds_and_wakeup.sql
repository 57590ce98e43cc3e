-- Channels an operator holds (PUT /delivery/holds/{channel}), e.g. during a gateway
-- incident or at a billing cap: the worker sends nothing on them; notifications keep
-- being created and wait, and go out once the hold is lifted. Shared by all instances.
CREATE TABLE delivery_holds (
    channel  text        PRIMARY KEY,
    reason   text        NOT NULL,
    held_by  text        NOT NULL,
    held_at  timestamptz NOT NULL DEFAULT now()
);

-- Wake the delivery worker (it LISTENs on sinergi_notifications) when notifications are
-- created, instead of at its next poll: one NOTIFY per inserting statement, at commit.
CREATE FUNCTION sinergi_notifications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sinergi_notifications', '');
    RETURN NULL;
END $$;

CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION sinergi_notifications_notify();
