-- hsmca schema, version 2: the profiles an ra (automation) principal may issue and revoke in.
-- Other roles are not limited by profile; for them the table holds nothing.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE principal_profiles (
	principal_id integer NOT NULL REFERENCES principals (id),
	profile text NOT NULL CHECK (octet_length(profile) BETWEEN 1 AND 64),
	PRIMARY KEY (principal_id, profile)
);

REVOKE ALL ON principal_profiles FROM PUBLIC;
GRANT SELECT, INSERT ON principal_profiles TO hsmca_app;
