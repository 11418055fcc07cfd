-- hsmca schema: what hsmca-crld needs beyond the CRL numbers of version 1. A change log of
-- revocation states, so that delta CRLs list exactly what changed since their base: every
-- change of a certificate into or out of revoked / hold is recorded with the id of the
-- transaction that made it. A delta CRL lists the changes that its base CRL's snapshot did not
-- see (pg_visible_in_snapshot), which neither misses a change committed late nor counts one
-- twice (docs/crld.md).
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE crl_changes (
	xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	authority_id integer NOT NULL REFERENCES authorities (id),
	certificate_id bigint NOT NULL REFERENCES certificates (id),
	old_status text NOT NULL,
	new_status text NOT NULL,
	at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crl_changes_by_xid ON crl_changes (authority_id, xid);

-- Written by the trigger only, as the table's owner: the application cannot forge or drop an
-- entry.
CREATE FUNCTION certificates_log_crl_change() RETURNS trigger LANGUAGE plpgsql
	SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
	IF NEW.status IS DISTINCT FROM OLD.status AND
	   (NEW.status IN ('revoked', 'hold') OR OLD.status IN ('revoked', 'hold')) THEN
		INSERT INTO crl_changes (authority_id, certificate_id, old_status, new_status)
			VALUES (NEW.authority_id, NEW.id, OLD.status, NEW.status);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER certificates_crl_change AFTER UPDATE OF status ON certificates
	FOR EACH ROW EXECUTE FUNCTION certificates_log_crl_change();

REVOKE ALL ON crl_changes FROM PUBLIC;
GRANT SELECT ON crl_changes TO hsmca_app;
