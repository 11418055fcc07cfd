-- hsmca schema: one place for each authority's CRL distribution, and a bounded way to forget
-- revocation changes that no delta CRL can need any more.
--
-- crl_base_url and crl_shards are where the certificates' CRL distribution point points
-- (<crl_base_url><ca>.crl, or <crl_base_url><ca>-<shard>.crl with shards) and which CRLs
-- hsmca-crld publishes. Both daemons read them from here, so they cannot disagree; a daemon
-- configuration that names other values is refused at start (docs/crld.md). '' and 0: no
-- distribution point stored yet.
--
-- crl_changes_prune deletes, in one statement, at most max_rows entries of one authority that
-- are older than every base CRL crld holds (xid below before_xid, the oldest xmin of its base
-- snapshots) and older than a margin in time (bases of other crld instances). The application
-- still cannot write or delete an entry of its choice: only old ones, a bounded batch at a time.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

ALTER TABLE authority_settings
	ADD COLUMN crl_base_url text NOT NULL DEFAULT ''
		CHECK (crl_base_url = '' OR (octet_length(crl_base_url) <= 400 AND
					     crl_base_url ~ '^https?://[^,"''<>\\]+/$' AND
					     crl_base_url !~ '[^!-~]')),
	ADD COLUMN crl_shards integer NOT NULL DEFAULT 0
		CHECK (crl_shards = 0 OR (crl_shards BETWEEN 2 AND 256 AND crl_base_url <> ''));

CREATE FUNCTION crl_changes_prune(p_authority_id integer, before_xid xid8,
				  margin_seconds integer, max_rows integer)
	RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, public AS $$
DECLARE
	n integer;
BEGIN
	IF margin_seconds < 0 OR max_rows < 1 OR max_rows > 10000 THEN
		RAISE EXCEPTION 'crl_changes_prune: margin % or batch % out of range',
			margin_seconds, max_rows;
	END IF;
	DELETE FROM crl_changes WHERE ctid IN (
		SELECT ctid FROM crl_changes
		WHERE authority_id = p_authority_id AND xid < before_xid
		  AND at < now() - make_interval(secs => margin_seconds)
		LIMIT max_rows);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

REVOKE ALL ON FUNCTION crl_changes_prune(integer, xid8, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crl_changes_prune(integer, xid8, integer, integer) TO hsmca_app;
