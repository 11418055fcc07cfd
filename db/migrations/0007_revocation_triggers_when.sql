-- hsmca schema: the two triggers on a certificate's status change (the revocation
-- announcement of version 1 and the CRL change log of version 5) fire for every status change,
-- issuance included (reserved -> issued), and each call runs a PL/pgSQL function that finds
-- nothing to do. A WHEN condition lets PostgreSQL decide that without calling the function,
-- which takes a fixed cost off every issuance. The functions keep their own checks.
--
-- Runs as the migration (owner) role inside one transaction that `hsmca db migrate` opens;
-- never BEGIN or COMMIT here.

DROP TRIGGER certificates_revocation_notify ON certificates;
CREATE TRIGGER certificates_revocation_notify AFTER UPDATE OF status ON certificates
	FOR EACH ROW
	WHEN (NEW.status IS DISTINCT FROM OLD.status AND
	      (NEW.status IN ('revoked', 'hold') OR OLD.status = 'hold'))
	EXECUTE FUNCTION certificates_announce_revocation();

DROP TRIGGER certificates_crl_change ON certificates;
CREATE TRIGGER certificates_crl_change AFTER UPDATE OF status ON certificates
	FOR EACH ROW
	WHEN (NEW.status IS DISTINCT FROM OLD.status AND
	      (NEW.status IN ('revoked', 'hold') OR OLD.status IN ('revoked', 'hold')))
	EXECUTE FUNCTION certificates_log_crl_change();
