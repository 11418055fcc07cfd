-- hsmca schema: quorum approvals (docs/approvals.md). An operation that policy puts under dual
-- control (retiring an authority, revoking a CA certificate, a key ceremony, a restore) is
-- first recorded as a pending request; M distinct principals of the roles the policy names
-- approve it; then it runs once. The rules are held here, not only in hsmca-cad's C:
--
--   * approval_votes' trigger locks the request (FOR UPDATE) and refuses a vote on a request
--     that is not pending or has expired, a requester approving their own request, a voter
--     who is not an enabled principal of one of the request's approver roles, and (UNIQUE) a
--     second vote of the same approver;
--   * approval_requests' trigger lets a request's state move only forward and only when the
--     votes allow it: to approved, executed or failed once required_approvals people stand
--     behind it (the requester and required_approvals - 1 approvers), to rejected with a
--     rejection, to expired once expires_at has passed; and nothing but state, executed_at
--     and result ever changes.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE approval_requests (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$'
		AND octet_length(kind) <= 64),
	-- what the operation acts on: an authority's name, a certificate's serial, a file's
	-- SHA-256 in hex
	target text NOT NULL CHECK (octet_length(target) BETWEEN 1 AND 256),
	parameters jsonb NOT NULL DEFAULT '{}'::jsonb
		CHECK (jsonb_typeof(parameters) = 'object' AND octet_length(parameters::text) <= 8192),
	requester text NOT NULL CHECK (octet_length(requester) BETWEEN 1 AND 128),
	requester_role text NOT NULL,
	-- the policy as it was when the request was made: a change of configuration does not
	-- change what an existing request needs. required_approvals counts people: the requester
	-- and required_approvals - 1 distinct approvers (2: dual control)
	required_approvals integer NOT NULL CHECK (required_approvals BETWEEN 1 AND 16),
	approver_roles text[] NOT NULL CHECK (cardinality(approver_roles) BETWEEN 1 AND 6
		AND approver_roles <@ ARRAY['ca-admin', 'admin', 'officer', 'auditor', 'operator',
		                            'ra']::text[]),
	state text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'executed', 'failed')),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	executed_at timestamptz,
	result text CHECK (octet_length(result) <= 4096),
	CHECK (expires_at > created_at)
);
CREATE INDEX approval_requests_pending ON approval_requests (kind, target) WHERE state IN
	('pending', 'approved');

CREATE TABLE approval_votes (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_id bigint NOT NULL REFERENCES approval_requests (id),
	approver text NOT NULL CHECK (octet_length(approver) BETWEEN 1 AND 128),
	approver_role text NOT NULL DEFAULT '',
	vote text NOT NULL CHECK (vote IN ('approve', 'reject')),
	reason text NOT NULL DEFAULT '' CHECK (octet_length(reason) <= 512),
	voted_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT approval_votes_once UNIQUE (request_id, approver)
);

-- The thresholds hsmca-cad's configuration sets for each kind, published by hsmca-cad when it
-- starts, so that `hsmca ceremony run` and `hsmca restore`, which run locally, know whether
-- they need an approved request (docs/approvals.md). No row: threshold 1, no approval needed.
CREATE TABLE approval_policies (
	kind text PRIMARY KEY CHECK (octet_length(kind) <= 64),
	required_approvals integer NOT NULL CHECK (required_approvals BETWEEN 1 AND 16),
	approver_roles text[] NOT NULL,
	expiry_seconds integer NOT NULL CHECK (expiry_seconds BETWEEN 1 AND 2592000),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- SQLSTATEs of the refusals (class HA, hsmca approvals), which db/db_approvals.c names.
CREATE FUNCTION approval_votes_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	r approval_requests%ROWTYPE;
	role text;
BEGIN
	SELECT * INTO r FROM approval_requests WHERE id = NEW.request_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no approval request %', NEW.request_id USING ERRCODE = 'HA000';
	END IF;
	IF r.state <> 'pending' THEN
		RAISE EXCEPTION 'approval request % is %, not pending', r.id, r.state
			USING ERRCODE = 'HA001';
	END IF;
	IF r.expires_at <= now() THEN
		RAISE EXCEPTION 'approval request % expired at %', r.id, r.expires_at
			USING ERRCODE = 'HA002';
	END IF;
	SELECT p.role INTO role FROM principals p WHERE p.name = NEW.approver AND NOT p.disabled;
	IF role IS NULL THEN
		RAISE EXCEPTION '% is not an enabled principal', NEW.approver USING ERRCODE = 'HA003';
	END IF;
	NEW.approver_role := role;
	IF NEW.approver = r.requester THEN
		-- the requester may withdraw (reject) their request, never approve it
		IF NEW.vote = 'approve' THEN
			RAISE EXCEPTION '% requested approval request % and may not approve it',
				NEW.approver, r.id USING ERRCODE = 'HA004';
		END IF;
	ELSIF NOT (role = ANY (r.approver_roles)) THEN
		RAISE EXCEPTION 'role % may not vote on approval request % (approvers: %)', role,
			r.id, array_to_string(r.approver_roles, ', ') USING ERRCODE = 'HA005';
	END IF;
	NEW.voted_at := now();
	RETURN NEW;
END
$$;
CREATE TRIGGER approval_votes_check BEFORE INSERT ON approval_votes
	FOR EACH ROW EXECUTE FUNCTION approval_votes_check();
CREATE TRIGGER approval_votes_refuse_change BEFORE UPDATE OR DELETE ON approval_votes
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION approval_requests_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	approvals integer;
	rejections integer;
BEGIN
	IF NEW.id <> OLD.id OR NEW.kind <> OLD.kind OR NEW.target <> OLD.target
	   OR NEW.parameters <> OLD.parameters OR NEW.requester <> OLD.requester
	   OR NEW.requester_role <> OLD.requester_role
	   OR NEW.required_approvals <> OLD.required_approvals
	   OR NEW.approver_roles <> OLD.approver_roles OR NEW.created_at <> OLD.created_at
	   OR NEW.expires_at <> OLD.expires_at THEN
		RAISE EXCEPTION 'approval request %: only its state and result change', OLD.id
			USING ERRCODE = 'HA006';
	END IF;
	IF NEW.state = OLD.state THEN
		IF NEW.executed_at IS DISTINCT FROM OLD.executed_at
		   OR NEW.result IS DISTINCT FROM OLD.result THEN
			RAISE EXCEPTION 'approval request %: the result is written with the state',
				OLD.id USING ERRCODE = 'HA006';
		END IF;
		RETURN NEW;
	END IF;
	SELECT count(*) FILTER (WHERE vote = 'approve'), count(*) FILTER (WHERE vote = 'reject')
		INTO approvals, rejections FROM approval_votes WHERE request_id = OLD.id;
	IF NOT ((OLD.state = 'pending' AND NEW.state IN ('approved', 'executed', 'failed')
	         AND approvals + 1 >= OLD.required_approvals)
	     OR (OLD.state = 'approved' AND NEW.state IN ('executed', 'failed'))
	     OR (OLD.state = 'pending' AND NEW.state = 'rejected' AND rejections > 0)
	     OR (OLD.state IN ('pending', 'approved') AND NEW.state = 'expired'
	         AND OLD.expires_at <= now())) THEN
		RAISE EXCEPTION 'approval request %: % -> % is not allowed (requester and % '
			'approvals of % needed, % rejections)', OLD.id, OLD.state, NEW.state, approvals,
			OLD.required_approvals, rejections USING ERRCODE = 'HA007';
	END IF;
	IF NEW.state IN ('executed', 'failed') THEN
		NEW.executed_at := now();
	ELSE
		NEW.executed_at := NULL;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER approval_requests_transition BEFORE UPDATE ON approval_requests
	FOR EACH ROW EXECUTE FUNCTION approval_requests_transition();
CREATE TRIGGER approval_requests_refuse_delete BEFORE DELETE ON approval_requests
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- hsmca-cad makes requests, records votes, moves states and publishes its policy.
GRANT SELECT, INSERT, UPDATE ON approval_requests, approval_policies TO hsmca_cad;
GRANT SELECT, INSERT ON approval_votes TO hsmca_cad;
-- The command line (hsmca ceremony run, hsmca restore, as hsmca_app): reads the policy and
-- the votes, and marks an approved request executed or failed when it runs it.
GRANT SELECT, UPDATE ON approval_requests TO hsmca_app;
GRANT SELECT ON approval_votes, approval_policies TO hsmca_app;
