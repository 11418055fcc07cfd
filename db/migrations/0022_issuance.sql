-- hsmca schema: the audit chain's trigger takes its lock without a query of its own when it
-- can.
--
-- Version 9's trigger began every appended row with PERFORM pg_advisory_xact_lock(...): a
-- PERFORM is a query run through the executor, once per row, even when the transaction holds
-- the lock already (every row after a group's first, docs/database.md "Groups"). Now the
-- trigger first tries the lock in a plain expression (pg_try_advisory_xact_lock, no executor),
-- and waits for it with the same PERFORM only when another transaction holds it. Either way
-- the lock is the same transaction-scoped advisory lock (1752395107, 2), held to the end of
-- the transaction, and the head is read afterwards in a statement of its own (a new snapshot
-- under READ COMMITTED, so it sees the commit of whoever held the lock before): the chain, its
-- hashes and every check are exactly version 9's.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE OR REPLACE FUNCTION audit_log_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	head_seq bigint;
	head_hash bytea;
	b_actor bytea;
	b_role bytea;
	b_action bytea;
	b_object bytea;
	b_outcome bytea;
	b_detail bytea;
BEGIN
	IF NOT pg_try_advisory_xact_lock(1752395107, 2) THEN
		PERFORM pg_advisory_xact_lock(1752395107, 2);
	END IF;
	SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
	head_seq := coalesce(head_seq, 0);
	head_hash := coalesce(head_hash, decode(repeat('00', 32), 'hex'));
	IF NEW.hash IS NULL THEN
		IF NEW.seq IS NOT NULL OR NEW.at IS NOT NULL OR NEW.prev_hash IS NOT NULL THEN
			RAISE EXCEPTION 'an audit entry brings all of seq, at, prev_hash and hash, or none'
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
		NEW.seq := head_seq + 1;
		NEW.at := clock_timestamp();
		NEW.prev_hash := head_hash;
		-- canonical format version 1 (db/db_audit.c): each text field as its length in bytes
		-- (u32 big-endian) and its UTF-8 bytes
		b_actor := convert_to(NEW.actor, 'UTF8');
		b_role := convert_to(NEW.role, 'UTF8');
		b_action := convert_to(NEW.action, 'UTF8');
		b_object := convert_to(NEW.object, 'UTF8');
		b_outcome := convert_to(NEW.outcome, 'UTF8');
		b_detail := convert_to(NEW.detail, 'UTF8');
		NEW.hash := sha256(head_hash || '\x01'::bytea || int8send(NEW.seq) ||
			int8send((extract(epoch FROM NEW.at) * 1000000)::bigint) ||
			int4send(octet_length(b_actor)) || b_actor || int4send(octet_length(b_role)) || b_role ||
			int4send(octet_length(b_action)) || b_action ||
			int4send(octet_length(b_object)) || b_object ||
			int4send(octet_length(b_outcome)) || b_outcome ||
			int4send(octet_length(b_detail)) || b_detail);
		RETURN NEW;
	END IF;
	IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
		RAISE EXCEPTION 'audit entry % does not extend the chain (head is %)',
			NEW.seq, head_seq
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END
$$;
