-- hsmca schema, version 1: authorities, certificates, principals, API tokens, the audit log,
-- CRL numbers; the application role and what it may do. docs/database.md describes it all.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

CREATE TABLE schema_version (
	version integer PRIMARY KEY CHECK (version > 0),
	name text NOT NULL,
	checksum text NOT NULL, -- SHA-256 (hex) of the migration's SQL as applied
	applied_at timestamptz NOT NULL DEFAULT now()
);

-- The application role. It is created without LOGIN: whoever deploys hsmca-cad decides how it
-- authenticates (ALTER ROLE hsmca_app LOGIN PASSWORD ..., or a pg_ident mapping).
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hsmca_app') THEN
		CREATE ROLE hsmca_app NOLOGIN;
	END IF;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE EXCEPTION 'role hsmca_app does not exist and role % may not create it', current_user
		USING HINT = 'create it once as a superuser (CREATE ROLE hsmca_app NOLOGIN), '
			'or migrate as a role with CREATEROLE';
END
$$;

CREATE TABLE authorities (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL CONSTRAINT authorities_name_unique UNIQUE
		CHECK (octet_length(name) BETWEEN 1 AND 128),
	subject text NOT NULL,
	subject_der bytea NOT NULL,
	ski bytea NOT NULL CHECK (octet_length(ski) BETWEEN 1 AND 64),
	certificate_der bytea NOT NULL,
	key_label text NOT NULL CHECK (octet_length(key_label) BETWEEN 1 AND 255),
	status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE certificates (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	authority_id integer NOT NULL REFERENCES authorities (id),
	-- The serial as the unsigned big-endian magnitude of the DER INTEGER, minimal (no
	-- leading zero byte); RFC 5280 allows at most 20 octets.
	serial bytea NOT NULL
		CHECK (octet_length(serial) BETWEEN 1 AND 20 AND get_byte(serial, 0) <> 0),
	status text NOT NULL DEFAULT 'reserved'
		CHECK (status IN ('reserved', 'issued', 'failed', 'revoked', 'hold')),
	profile text NOT NULL,
	subject text NOT NULL,
	not_before timestamptz NOT NULL,
	not_after timestamptz NOT NULL,
	spki_sha256 bytea NOT NULL CHECK (octet_length(spki_sha256) = 32),
	der bytea, -- NULL until signed
	requester text NOT NULL,
	crl_shard integer NOT NULL DEFAULT 0 CHECK (crl_shard >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	issued_at timestamptz,
	revoked_at timestamptz,
	-- RFC 5280 CRLReason; 7 is unassigned.
	revocation_reason smallint CHECK (revocation_reason BETWEEN 0 AND 10 AND
					 revocation_reason <> 7),
	invalidity_date timestamptz,
	-- Invariant 2: the serial is unique per issuer, by constraint.
	CONSTRAINT certificates_serial_unique UNIQUE (authority_id, serial),
	CONSTRAINT certificates_validity CHECK (not_before < not_after),
	-- A signed certificate is stored with its DER.
	CONSTRAINT certificates_signed_has_der CHECK (status NOT IN ('issued', 'hold') OR
						      der IS NOT NULL),
	CONSTRAINT certificates_revocation_fields CHECK (
		CASE status
		WHEN 'revoked' THEN revoked_at IS NOT NULL AND revocation_reason IS NOT NULL
		WHEN 'hold' THEN revoked_at IS NOT NULL AND revocation_reason = 6
		ELSE revoked_at IS NULL AND revocation_reason IS NULL AND invalidity_date IS NULL
		END),
	CONSTRAINT certificates_invalidity_before_revocation CHECK (invalidity_date IS NULL OR
								    invalidity_date <= revoked_at)
);

-- Lookups: by serial without an issuer, by subject, by status (and the CRL builder's list of
-- revoked and held entries), by expiry.
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_subject ON certificates (subject);
CREATE INDEX certificates_status ON certificates (authority_id, status);
CREATE INDEX certificates_revoked ON certificates (authority_id, crl_shard, revoked_at)
	WHERE status IN ('revoked', 'hold');
CREATE INDEX certificates_not_after ON certificates (not_after);

CREATE TABLE certificate_sans (
	certificate_id bigint NOT NULL REFERENCES certificates (id),
	ordinal smallint NOT NULL CHECK (ordinal >= 0), -- order in the extension
	kind text NOT NULL CHECK (kind IN ('dns', 'ip', 'email', 'uri')),
	value text NOT NULL,
	PRIMARY KEY (certificate_id, ordinal)
);
CREATE INDEX certificate_sans_value ON certificate_sans (value);

CREATE TABLE principals (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL CONSTRAINT principals_name_unique UNIQUE
		CHECK (octet_length(name) BETWEEN 1 AND 128),
	role text NOT NULL
		CHECK (role IN ('ca-admin', 'admin', 'officer', 'auditor', 'operator', 'ra')),
	-- SHA-256 of the client certificate's DER, for mTLS.
	cert_sha256 bytea CONSTRAINT principals_cert_unique UNIQUE
		CHECK (octet_length(cert_sha256) = 32),
	disabled boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	principal_id integer NOT NULL REFERENCES principals (id),
	-- Only SHA-256 of the (high-entropy) token is stored; the token is shown once.
	token_sha256 bytea NOT NULL CONSTRAINT api_tokens_hash_unique UNIQUE
		CHECK (octet_length(token_sha256) = 32),
	name text NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz
);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);

-- The audit log: hash = SHA-256(prev_hash || canonical entry), computed by the data layer
-- (db/db_audit.c; the byte format is in docs/database.md). seq is assigned by the appender
-- under a lock as head + 1, so the sequence has no gaps and a missing seq is a deleted entry.
CREATE TABLE audit_log (
	seq bigint PRIMARY KEY CHECK (seq > 0),
	at timestamptz NOT NULL,
	actor text NOT NULL,
	role text NOT NULL,
	action text NOT NULL,
	object text NOT NULL,
	outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
	detail text NOT NULL,
	prev_hash bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
	hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);

-- Signed checkpoints over the chain head (signed through keyd by hsmca-cad).
CREATE TABLE audit_checkpoints (
	seq bigint PRIMARY KEY CHECK (seq > 0),
	head_hash bytea NOT NULL CHECK (octet_length(head_hash) = 32),
	signature bytea NOT NULL,
	key_label text NOT NULL,
	at timestamptz NOT NULL DEFAULT now()
);

-- Belt and braces behind the grants: nobody, owner included, updates or deletes audit rows
-- without first disabling these triggers (which only the owner can, and which is itself a
-- visible act).
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- An appended entry must extend the chain: next seq, and prev_hash equal to the head's hash.
-- Appenders serialise on an advisory lock first; this catches one that does not.
CREATE FUNCTION audit_log_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	head_seq bigint;
	head_hash bytea;
BEGIN
	SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
	IF NEW.seq <> coalesce(head_seq, 0) + 1 OR
	   NEW.prev_hash <> coalesce(head_hash, decode(repeat('00', 32), 'hex')) THEN
		RAISE EXCEPTION 'audit entry % does not extend the chain (head is %)',
			NEW.seq, coalesce(head_seq, 0)
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_extends_chain();

CREATE TABLE crl_numbers (
	authority_id integer PRIMARY KEY REFERENCES authorities (id),
	next_number bigint NOT NULL DEFAULT 1 CHECK (next_number > 0)
);

-- Revocation announcements: channel hsmca_revocation, payload
-- "<authority id> <serial hex> <new status>", sent (after commit) when a certificate becomes
-- revoked or held, or is released from hold.
CREATE FUNCTION certificates_announce_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status IS DISTINCT FROM OLD.status AND
	   (NEW.status IN ('revoked', 'hold') OR OLD.status = 'hold') THEN
		PERFORM pg_notify('hsmca_revocation',
				  NEW.authority_id || ' ' || encode(NEW.serial, 'hex') || ' ' ||
				  NEW.status);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER certificates_revocation_notify AFTER UPDATE OF status ON certificates
	FOR EACH ROW EXECUTE FUNCTION certificates_announce_revocation();

-- What the application may do. No DELETE anywhere; the audit tables are insert-only.
REVOKE ALL ON schema_version, authorities, certificates, certificate_sans, principals,
	api_tokens, audit_log, audit_checkpoints, crl_numbers FROM PUBLIC;
GRANT SELECT ON schema_version TO hsmca_app;
GRANT SELECT, INSERT, UPDATE ON authorities, certificates, principals, api_tokens, crl_numbers
	TO hsmca_app;
GRANT SELECT, INSERT ON certificate_sans, audit_log, audit_checkpoints TO hsmca_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_checkpoints FROM hsmca_app;
