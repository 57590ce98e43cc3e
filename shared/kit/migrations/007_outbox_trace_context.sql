-- The trace context (W3C traceparent/tracestate) of the work that staged each event, so
-- the relay's publish joins the citizen's trace (shared/kit/tracing.py). NULL while
-- tracing is off: nothing stored, nothing read.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
