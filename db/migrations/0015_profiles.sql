-- hsmca schema: certificate profiles stored in the database, versioned (docs/profiles.md,
-- "Managing profiles"). Until now profiles lived in hsmca-cad's configuration only; from here
-- the database is their source of truth: hsmca-cad copies its configuration's profiles in as
-- version 1 on its first start against an empty table (a migration cannot see the
-- configuration), and admins create, edit (a new version) and clone them through the API.
--
--   profiles          one row per profile name: its current version.
--   profile_versions  every version ever made, immutable: the body is the profile as JSON, with
--                     the configuration file's field names.
--   certificates.profile_version   the version a certificate was issued under (NULL for
--                     certificates issued before this migration).
--   authority_settings.full_crl_idp  whether the authority's full CRL carries an Issuing
--                     Distribution Point (NULL: not stored yet; hsmca-crld's configuration
--                     seeds it).
--
-- A change to profiles is announced on the channel hsmca_profiles (payload: the name) once it
-- commits, so every hsmca-cad picks it up without a restart.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE profiles (
	name text PRIMARY KEY CHECK (name ~ '^[a-z0-9_-]{1,64}$'),
	current_version integer NOT NULL CHECK (current_version >= 1),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE profile_versions (
	profile text NOT NULL REFERENCES profiles (name),
	version integer NOT NULL CHECK (version >= 1),
	body jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object' AND
				   octet_length(body::text) <= 65536),
	created_by text NOT NULL CHECK (octet_length(created_by) BETWEEN 1 AND 200),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (profile, version)
);

-- A version is never changed or removed, whoever asks (the owner included).
CREATE FUNCTION profile_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'profile versions are immutable: make a new version instead';
END
$$;
CREATE TRIGGER profile_versions_immutable BEFORE UPDATE OR DELETE ON profile_versions
	FOR EACH ROW EXECUTE FUNCTION profile_versions_immutable();
CREATE TRIGGER profile_versions_no_truncate BEFORE TRUNCATE ON profile_versions
	FOR EACH STATEMENT EXECUTE FUNCTION profile_versions_immutable();

-- The current version must exist: profiles.current_version moves only to a stored version
-- (checked at commit, since a profile and its first version are inserted together).
ALTER TABLE profiles ADD CONSTRAINT profiles_current_version_stored
	FOREIGN KEY (name, current_version) REFERENCES profile_versions (profile, version)
	DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION profiles_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('hsmca_profiles', NEW.name);
	RETURN NULL;
END
$$;
CREATE TRIGGER profiles_announce AFTER INSERT OR UPDATE ON profiles
	FOR EACH ROW EXECUTE FUNCTION profiles_announce();

ALTER TABLE certificates ADD COLUMN profile_version integer CHECK (profile_version >= 1);

ALTER TABLE authority_settings ADD COLUMN full_crl_idp boolean;

-- hsmca-crld's one write to the settings: its configuration's idp choice stored where none is
-- (a missing row made with the defaults of docs/api.md), and the stored choice returned, so
-- that crld can refuse a configuration that disagrees. Nothing else of the row can change
-- through it, so crld gets no UPDATE on authority_settings.
CREATE FUNCTION authority_full_crl_idp_claim(p_authority_id integer, p_idp boolean)
	RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, public AS $$
DECLARE
	stored boolean;
BEGIN
	INSERT INTO authority_settings (authority_id, crl_next_update_seconds, delta_crl_seconds,
					ocsp_validity_seconds, ocsp_nonce_rate_limit, updated_by,
					full_crl_idp)
		SELECT p_authority_id, 86400, 0, 3600, 0, 'hsmca-crld configuration', p_idp
		WHERE EXISTS (SELECT 1 FROM authorities WHERE id = p_authority_id)
		ON CONFLICT (authority_id) DO UPDATE SET full_crl_idp = excluded.full_crl_idp
		WHERE authority_settings.full_crl_idp IS NULL;
	SELECT full_crl_idp INTO stored FROM authority_settings
		WHERE authority_id = p_authority_id;
	RETURN stored;
END
$$;
REVOKE ALL ON FUNCTION authority_full_crl_idp_claim(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION authority_full_crl_idp_claim(integer, boolean) TO hsmca_crld,
	hsmca_app;

REVOKE ALL ON profiles, profile_versions FROM PUBLIC;
-- hsmca_app (the command line, older deployments) and hsmca_cad (migration 0013): profiles are
-- read and advanced, versions only added. Neither ocspd nor crld reads profiles.
GRANT SELECT, INSERT, UPDATE ON profiles TO hsmca_app, hsmca_cad;
GRANT SELECT, INSERT ON profile_versions TO hsmca_app, hsmca_cad;
