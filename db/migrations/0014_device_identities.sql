-- hsmca schema: device identities in lower case. hsmca-cad lower-cases an identity (the CSR's
-- CN, or its first SAN) before it compares or stores it, so GW-0042 and gw-0042 are one device
-- (docs/est.md), and the data layer stores and looks identities up through lower(). This
-- migration brings rows stored before that rule to it, and keeps it from then on.
--
-- Two devices whose identities differ only in case cannot be merged silently (each has its
-- own certificates and history): the migration then refuses, naming every such group, and
-- changes nothing. Rename one of each group (as the database owner,
-- UPDATE devices SET identity = '...' WHERE id = ...) or decide which to keep, then migrate
-- again.
--
-- No grants: hsmca_cad already reads and writes devices (0013).
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

DO $$
DECLARE
	clashes text;
	n integer;
BEGIN
	SELECT string_agg(format('%s (ids %s)', folded, ids), '; ' ORDER BY folded), count(*)
	  INTO clashes, n
	  FROM (SELECT lower(identity) AS folded,
		       string_agg(format('%s=%s', id, identity), ', ' ORDER BY id) AS ids
		  FROM devices
		 GROUP BY 1
		HAVING count(*) > 1) AS g;
	IF n > 0 THEN
		RAISE EXCEPTION 'device identities that differ only in case: %', clashes
			USING HINT = 'identities are compared in lower case now; rename one device of '
				'each group (UPDATE devices SET identity = ... WHERE id = ...) or decide '
				'which to keep, then migrate again; nothing was changed',
			ERRCODE = 'unique_violation';
	END IF;
END
$$;

UPDATE devices SET identity = lower(identity) WHERE identity <> lower(identity);

ALTER TABLE devices ADD CONSTRAINT devices_identity_lower_case CHECK (identity = lower(identity));
