-- hsmca schema: one group role per daemon, each granted exactly what that daemon's queries need
-- (docs/database.md, "Roles"; docs/security.md). hsmca_app keeps its grants: it is
-- the role of the command line (hsmca backup, the tests' own checks) and of deployments that
-- have not moved their daemons to their own roles yet.
--
--   hsmca_cad    issuance, revocation, EST, principals and tokens, settings, the audit log:
--                every table but the OCSP response copy and the CRL change log (which the
--                certificates trigger writes as its owner).
--   hsmca_ocspd  reads authorities, their settings and certificates (with their SANs); writes
--                only its shared copy of OCSP responses (ocsp_responses).
--   hsmca_crld   reads authorities, their settings, certificates and the CRL change log;
--                advances CRL numbers; prunes the change log through crl_changes_prune.
--
-- None but hsmca_cad may read or change principals, API tokens, provisioning tokens or
-- devices, or write certificates or the audit log. All three are NOLOGIN: a daemon connects as
-- a login role that is a member of its group (the quickstart makes "hsmca-cad",
-- "hsmca-ocspd" and "hsmca-crld"), so the deployment decides how each authenticates.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['hsmca_cad', 'hsmca_ocspd', 'hsmca_crld'] LOOP
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE EXCEPTION 'roles hsmca_cad, hsmca_ocspd, hsmca_crld do not all exist and role % may '
		'not create them', current_user
		USING HINT = 'create them once as a superuser (CREATE ROLE hsmca_cad NOLOGIN; and so '
			'on), or migrate as a role with CREATEROLE';
END
$$;

-- hsmca-cad (ca-core/ca, ca-core/cad over db/): what each of its data-layer calls reads and
-- writes. No DELETE anywhere; the audit tables are insert-only (0001's triggers too).
GRANT SELECT ON schema_version TO hsmca_cad;
GRANT SELECT, INSERT, UPDATE ON authorities, authority_settings, profile_settings, certificates,
	principals, api_tokens, provisioning_tokens, devices TO hsmca_cad;
GRANT SELECT, INSERT ON crl_numbers, certificate_sans, principal_profiles, device_certificates,
	audit_log, audit_checkpoints TO hsmca_cad;
-- ACME (migration 0012, db/db_acme.c): accounts and EAB credentials change state, renewal
-- incidents are only added.
GRANT SELECT, INSERT, UPDATE ON acme_eab_credentials, acme_accounts TO hsmca_cad;
GRANT SELECT, INSERT ON acme_renewal_incidents TO hsmca_cad;

-- hsmca-ocspd (ocsp/ over db_authorities.c, db_settings.c, db_certs.c, db_ocsp.c): the
-- authority list and settings, certificate statuses and lookups (db_cert_lookup reads the
-- SANs too), its response copy.
GRANT SELECT ON authorities, authority_settings, certificates, certificate_sans TO hsmca_ocspd;
GRANT SELECT, INSERT, UPDATE ON ocsp_responses TO hsmca_ocspd;

-- hsmca-crld (crl/ over db_authorities.c, db_settings.c, db_crl.c): the authority list and
-- settings, the CRL scan over certificates and the change log, the next CRL number.
GRANT SELECT ON authorities, authority_settings, certificates, crl_changes TO hsmca_crld;
GRANT SELECT, UPDATE ON crl_numbers TO hsmca_crld;
GRANT EXECUTE ON FUNCTION crl_changes_prune(integer, xid8, integer, integer) TO hsmca_crld;
