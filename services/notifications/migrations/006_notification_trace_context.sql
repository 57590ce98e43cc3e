-- The trace context (W3C traceparent) of the event a notification was made for, so its
-- delivery joins the citizen's trace (shared/kit/tracing.py). NULL while tracing is off.
ALTER TABLE notifications ADD COLUMN traceparent text;
