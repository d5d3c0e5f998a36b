-- Audit events numbered in commit order, so that a reader of `sequence > last_seen` never
-- skips an event whose transaction commits late.
--
-- An identity value is taken before commit, and transactions commit in any order: a reader
-- could see 8 before 7 existed and then never look back. Instead one counter row numbers
-- every event. The transaction that takes N keeps the row locked until it commits or rolls
-- back, so the next writer's audit insert waits, and takes N+1 only once N is visible (or
-- takes N again after a rollback). Numbers are gap-free and follow commit order; the price is
-- that audited transactions commit one at a time from their audit insert on, which is why
-- every transaction writes its audit row as its last statement.

-- First, so that the exclusive lock keeps writers out while the counter is initialised.
ALTER TABLE audit_events ALTER COLUMN sequence DROP IDENTITY;

CREATE TABLE audit_sequence (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),  -- at most one row
    last  bigint NOT NULL CHECK (last >= 0)
);
INSERT INTO audit_sequence (last) SELECT coalesce(max(sequence), 0) FROM audit_events;

CREATE FUNCTION audit_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_sequence SET last = last + 1 RETURNING last INTO NEW.sequence;
    -- Delivered at commit, and only if the transaction commits: it wakes the watchers of
    -- every replica, which then read the table themselves.
    PERFORM pg_notify('audit_events', NEW.sequence::text);
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_events_number BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_number();

-- ListAuditEvents / WatchEvents filters, each able to return rows in sequence order so that a
-- page stops early. A resource filter (`models/llama/versions/3`: that and everything beneath)
-- looks up the first two segments (`models/llama`) by equality and checks the rest; a range
-- or LIKE 'prefix/%' with parameters would leave the planner's generic plan scanning the whole
-- log in sequence order. 0001's exact-match index is subsumed.
DROP INDEX audit_events_resource;
CREATE INDEX audit_events_scope
    ON audit_events ((split_part(resource, '/', 1) || '/' || split_part(resource, '/', 2)), sequence);
CREATE INDEX audit_events_principal ON audit_events (principal, sequence);
CREATE INDEX audit_events_time ON audit_events (time);
