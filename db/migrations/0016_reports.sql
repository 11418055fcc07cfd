-- hsmca schema: what the dashboard and the reports read (docs/reports.md). hsmca-crld records
-- every CRL it publishes (crl_publications, insert-only for it), `hsmca backup` records every
-- run (backup_runs, changed only through two functions that touch the caller's own running
-- row), principals note when their client certificate was last used (at most once a minute,
-- like API tokens), and the certificate times the reports count by are indexed.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

-- One row per CRL file hsmca-crld published (renamed into place), full or delta, per scope
-- (the authority's name, or "<name>-<shard>" for a partitioned one).
CREATE TABLE crl_publications (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	authority_id integer NOT NULL REFERENCES authorities (id),
	scope text NOT NULL CHECK (octet_length(scope) BETWEEN 1 AND 160),
	delta boolean NOT NULL,
	number bigint NOT NULL CHECK (number > 0),
	this_update timestamptz NOT NULL,
	next_update timestamptz NOT NULL,
	published_at timestamptz NOT NULL DEFAULT now(),
	CHECK (this_update < next_update)
);
-- The dashboard reads the newest publication per authority and kind.
CREATE INDEX crl_publications_latest ON crl_publications (authority_id, delta, published_at);

-- One row per `hsmca backup` run: recorded as running before the dump starts, finished with
-- its outcome, the archive's size and SHA-256 (or the error) when it ends. run_by is the
-- database role that ran it.
CREATE TABLE backup_runs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_by text NOT NULL DEFAULT session_user,
	archive text NOT NULL CHECK (octet_length(archive) BETWEEN 1 AND 1024),
	started_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	outcome text NOT NULL DEFAULT 'running'
		CHECK (outcome IN ('running', 'success', 'failed')),
	size_bytes bigint CHECK (size_bytes >= 0),
	sha256 bytea CHECK (octet_length(sha256) = 32),
	error text CHECK (octet_length(error) <= 1024),
	CONSTRAINT backup_runs_finished CHECK ((outcome = 'running') = (finished_at IS NULL)),
	CONSTRAINT backup_runs_success_fields CHECK (outcome <> 'success' OR
						     (size_bytes IS NOT NULL AND sha256 IS NOT NULL))
);
CREATE INDEX backup_runs_success ON backup_runs (finished_at) WHERE outcome = 'success';

-- A run is started and finished only through these, as the role that runs the backup: the
-- table itself grants no INSERT or UPDATE to anyone but its owner, and a run can be finished
-- once, by the role that started it.
CREATE FUNCTION backup_run_start(p_archive text) RETURNS bigint LANGUAGE sql
	SECURITY DEFINER SET search_path = pg_catalog, public AS $$
	INSERT INTO backup_runs (run_by, archive) VALUES (session_user, p_archive) RETURNING id
$$;

CREATE FUNCTION backup_run_finish(p_id bigint, p_success boolean, p_size bigint, p_sha256 bytea,
				  p_error text) RETURNS boolean LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
	UPDATE backup_runs SET finished_at = now(),
		outcome = CASE WHEN p_success THEN 'success' ELSE 'failed' END,
		size_bytes = p_size, sha256 = p_sha256, error = p_error
		WHERE id = p_id AND run_by = session_user AND outcome = 'running';
	RETURN FOUND;
END
$$;

REVOKE ALL ON crl_publications, backup_runs FROM PUBLIC;
REVOKE ALL ON FUNCTION backup_run_start(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION backup_run_finish(bigint, boolean, bigint, bytea, text) FROM PUBLIC;

-- When a principal's client certificate was last used (API tokens have had last_used_at
-- since version 1).
ALTER TABLE principals ADD COLUMN last_used_at timestamptz;

-- The reports' periods: certificates issued, revoked (or held) and expiring in a period.
-- (certificates_not_after of version 1 serves expiry.)
CREATE INDEX certificates_issued_at ON certificates (issued_at) WHERE issued_at IS NOT NULL;
CREATE INDEX certificates_revoked_at ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
-- The dashboard's OCSP freshness per authority: the earliest nextUpdate of the shared
-- responses and how many have passed it, without reading every response.
CREATE INDEX ocsp_responses_next_update ON ocsp_responses (authority_id, next_update);

-- hsmca-crld adds its publications and nothing else; hsmca-cad reads them and the backup runs
-- (the dashboard, GET /api/v1/backups).
GRANT INSERT ON crl_publications TO hsmca_crld;
GRANT SELECT ON crl_publications, backup_runs TO hsmca_cad;
-- The dashboard's OCSP freshness: of hsmca-ocspd's response copy, only whose and until when.
GRANT SELECT (authority_id, next_update) ON ocsp_responses TO hsmca_cad;
-- hsmca_app, the command line's role, runs backups through the two functions (no INSERT or
-- UPDATE on backup_runs); as the role of deployments whose daemons have not moved to their
-- own roles (migration 0013) it also needs what hsmca-cad and hsmca-crld do above.
GRANT SELECT, INSERT ON crl_publications TO hsmca_app;
GRANT SELECT ON backup_runs TO hsmca_app;
GRANT EXECUTE ON FUNCTION backup_run_start(text) TO hsmca_app;
GRANT EXECUTE ON FUNCTION backup_run_finish(bigint, boolean, bigint, bytea, text) TO hsmca_app;
