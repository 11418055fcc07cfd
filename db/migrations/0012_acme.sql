-- hsmca schema: ACME (RFC 8555) accounts and their External Account Binding credentials
-- (RFC 8555 §7.3.4). An officer makes a credential (a key identifier and an HMAC key, shown
-- once) that binds the one account registered with it to a principal, the profiles it may use
-- and the identifier patterns it may ask for. docs/acme.md describes the flow.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE acme_eab_credentials (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kid text NOT NULL CONSTRAINT acme_eab_kid_unique UNIQUE
		CHECK (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
	-- The MAC key itself: the server must recompute the client's MAC, so it cannot keep a
	-- hash only. Readable by hsmca_app alone (no PUBLIC grant), never logged.
	hmac_key bytea NOT NULL CHECK (octet_length(hmac_key) BETWEEN 32 AND 64),
	principal text NOT NULL CHECK (principal ~ '^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$'),
	-- The profiles accounts bound by it may use, comma-separated, at least one.
	profiles text NOT NULL CHECK (octet_length(profiles) BETWEEN 1 AND 1024),
	-- Identifier patterns (exact names, or "*.corp.example.com") orders may name; empty:
	-- whatever the profile allows.
	allow text[] NOT NULL DEFAULT '{}' CHECK (cardinality(allow) <= 1000),
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	-- The account it bound (set once, on the account's registration).
	account_id bigint CONSTRAINT acme_eab_account_unique UNIQUE
);

CREATE TABLE acme_accounts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	status text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'deactivated', 'revoked')),
	-- The account key's JWK (compact JSON) and its RFC 7638 thumbprint: one account per key.
	jwk text NOT NULL CHECK (octet_length(jwk) BETWEEN 2 AND 2048),
	thumbprint text NOT NULL CONSTRAINT acme_accounts_thumbprint_unique UNIQUE
		CHECK (thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
	-- The contact URLs as a JSON array (mailto: only, checked by the server).
	contact text NOT NULL DEFAULT '[]' CHECK (octet_length(contact) <= 4096),
	tos_agreed boolean NOT NULL DEFAULT false,
	eab_id bigint CONSTRAINT acme_accounts_eab_unique UNIQUE
		REFERENCES acme_eab_credentials (id),
	principal text NOT NULL DEFAULT '' CHECK (octet_length(principal) <= 128),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deactivated_at timestamptz,
	CONSTRAINT acme_accounts_deactivation CHECK ((status = 'valid') = (deactivated_at IS NULL))
);

ALTER TABLE acme_eab_credentials ADD CONSTRAINT acme_eab_account_fk
	FOREIGN KEY (account_id) REFERENCES acme_accounts (id);

-- A credential binds at most once: account_id goes from NULL to an id and never changes.
CREATE FUNCTION acme_eab_bind_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.account_id IS NOT NULL AND NEW.account_id IS DISTINCT FROM OLD.account_id THEN
		RAISE EXCEPTION 'EAB credential % is bound to account % already', OLD.kid,
			OLD.account_id USING ERRCODE = 'check_violation';
	END IF;
	IF NEW.kid <> OLD.kid OR NEW.hmac_key <> OLD.hmac_key OR NEW.principal <> OLD.principal
	   OR NEW.profiles <> OLD.profiles OR NEW.allow <> OLD.allow THEN
		RAISE EXCEPTION 'EAB credential % may not change' , OLD.kid
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER acme_eab_bind_once BEFORE UPDATE ON acme_eab_credentials
	FOR EACH ROW EXECUTE FUNCTION acme_eab_bind_once();

REVOKE ALL ON acme_eab_credentials, acme_accounts FROM PUBLIC;
REVOKE ALL ON FUNCTION acme_eab_bind_once() FROM PUBLIC;
-- No DELETE: accounts and credentials are deactivated or revoked, never removed.
GRANT SELECT, INSERT, UPDATE ON acme_eab_credentials, acme_accounts TO hsmca_app;

-- Renewal incidents (RFC 9773): an officer's flag that an authority's certificates issued
-- before a moment should be renewed at once (a misissuance, a weak key found, a planned
-- rotation). Renewal information then suggests a window that has ended already.
CREATE TABLE acme_renewal_incidents (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	authority_id integer NOT NULL REFERENCES authorities (id),
	issued_before timestamptz NOT NULL DEFAULT now(),
	reason text NOT NULL CHECK (octet_length(reason) BETWEEN 1 AND 512),
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_renewal_incidents_authority ON acme_renewal_incidents (authority_id);
REVOKE ALL ON acme_renewal_incidents FROM PUBLIC;
-- An incident is a record: never changed or removed by the application.
GRANT SELECT, INSERT ON acme_renewal_incidents TO hsmca_app;

-- Orders (RFC 8555 §7.1.3), their authorizations (§7.1.4), and the challenges of each
-- authorization (§7.1.5). An authorization belongs to one account and one identifier; a valid
-- one is reused by the account's later orders for the same identifier until it expires. Every
-- state change is made by hsmca-cad with its audit entry in the same transaction.
CREATE TABLE acme_authorizations (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES acme_accounts (id),
	identifier_type text NOT NULL CHECK (identifier_type IN ('dns', 'ip')),
	-- Lower case for dns; "*." stays off: wildcard says so.
	identifier text NOT NULL CHECK (octet_length(identifier) BETWEEN 1 AND 253),
	wildcard boolean NOT NULL DEFAULT false,
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_authorizations_reuse ON acme_authorizations
	(account_id, identifier_type, identifier, wildcard, status);

CREATE TABLE acme_challenges (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	authz_id bigint NOT NULL REFERENCES acme_authorizations (id),
	type text NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
	token text NOT NULL CHECK (token ~ '^[A-Za-z0-9_-]{43}$'),
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
	validated_at timestamptz,
	-- The validator's problem (RFC 8555 §8.2) when invalid.
	error_type text NOT NULL DEFAULT '' CHECK (octet_length(error_type) <= 32),
	error_detail text NOT NULL DEFAULT '' CHECK (octet_length(error_detail) <= 512),
	CONSTRAINT acme_challenges_type_once UNIQUE (authz_id, type)
);

CREATE TABLE acme_orders (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES acme_accounts (id),
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
	-- The identifiers as the client named them: a JSON array of {"type", "value"}.
	identifiers text NOT NULL CHECK (octet_length(identifiers) BETWEEN 2 AND 65536),
	profile text NOT NULL CHECK (octet_length(profile) BETWEEN 1 AND 64),
	expires_at timestamptz NOT NULL,
	-- The certificate once issued (its serial, hex, of certificates.serial).
	cert_serial text CHECK (cert_serial ~ '^[0-9A-Fa-f]{2,80}$'),
	error_type text NOT NULL DEFAULT '' CHECK (octet_length(error_type) <= 32),
	error_detail text NOT NULL DEFAULT '' CHECK (octet_length(error_detail) <= 1024),
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT acme_orders_cert CHECK ((status = 'valid') = (cert_serial IS NOT NULL))
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);

CREATE TABLE acme_order_authorizations (
	order_id bigint NOT NULL REFERENCES acme_orders (id),
	authz_id bigint NOT NULL REFERENCES acme_authorizations (id),
	PRIMARY KEY (order_id, authz_id)
);
CREATE INDEX acme_order_authorizations_authz ON acme_order_authorizations (authz_id);

REVOKE ALL ON acme_authorizations, acme_challenges, acme_orders, acme_order_authorizations
	FROM PUBLIC;
-- No DELETE: orders, authorizations and challenges end in a final status, never removed.
GRANT SELECT, INSERT, UPDATE ON acme_authorizations, acme_challenges, acme_orders
	TO hsmca_app;
GRANT SELECT, INSERT ON acme_order_authorizations TO hsmca_app;
