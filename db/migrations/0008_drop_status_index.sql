-- hsmca schema: drop the certificates (authority_id, status) index.
--
-- No query is served by it: listings filter on status as "($2 IS NULL OR status = $2)", which
-- an index cannot serve; the CRL and OCSP readers use the partial index certificates_revoked.
-- It did harm: hsmca-cad prepares its statements once per connection, and a plan made while
-- the table was still empty (no statistics yet) could pick this index for the issuance
-- UPDATE's "authority_id = $1 AND serial = $2" and then walk every certificate of the
-- authority on each issuance until the next ANALYZE. With it gone, the serial indexes are the
-- only ones that match, and every issuance maintains one index fewer.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

DROP INDEX certificates_status;
