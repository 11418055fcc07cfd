#!/usr/bin/python3
"""python-cryptography as a relying party, for tests/validators/validators.sh.

Runs with Debian 12's python3-cryptography (38.0.4), which has no path validation API: the
checks are the ones a relying party makes, written out (signature by the issuer's key, names
and key identifiers chained, validity, extensions decoded, usages). When the installed
version has the x509 verification API (cryptography 42 and later), leaves are validated
through it as well.

  validators.py cert CERT (ISSUER | --root) [--server NAME]
  validators.py crl CRL ISSUER [--delta-of FULL]
  validators.py revoked CERT CRL ISSUER
  validators.py ocsp RESPONSE CERT ISSUER (good | revoked)
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID


def fail(msg):
    print("python-cryptography: " + msg, file=sys.stderr)
    sys.exit(1)


def load_cert(path):
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificate(data)


def load_crl(path):
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_crl(data)


def now():
    return datetime.datetime.utcnow()


def verify_sig(pub, sig, data, hash_alg, what):
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, data, padding.PKCS1v15(), hash_alg)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, data, ec.ECDSA(hash_alg))
        else:
            fail(what + ": unexpected key type " + type(pub).__name__)
    except Exception as e:  # InvalidSignature and friends
        fail(what + ": the signature does not verify (" + type(e).__name__ + ")")


def ext(obj, cls):
    try:
        return obj.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def check_issued_by(cert, issuer, what):
    if cert.issuer != issuer.subject:
        fail(what + ": its issuer name is not the issuer's subject")
    verify_sig(issuer.public_key(), cert.signature, cert.tbs_certificate_bytes,
               cert.signature_hash_algorithm, what)
    aki = ext(cert, x509.AuthorityKeyIdentifier)
    ski = ext(issuer, x509.SubjectKeyIdentifier)
    if aki is None or ski is None or aki.value.key_identifier != ski.value.digest:
        fail(what + ": authorityKeyIdentifier is not the issuer's subjectKeyIdentifier")


def cmd_cert(args):
    cert = load_cert(args[0])
    what = args[0]
    _ = list(cert.extensions)  # every extension decodes, none twice
    if not cert.not_valid_before <= now() <= cert.not_valid_after:
        fail(what + ": not valid now")
    if cert.version != x509.Version.v3:
        fail(what + ": not version 3")
    if args[1] == "--root":
        check_issued_by(cert, cert, what)
        issuer = cert
    else:
        issuer = load_cert(args[1])
        check_issued_by(cert, issuer, what)
        if not issuer.not_valid_before <= cert.not_valid_before or \
                cert.not_valid_after > issuer.not_valid_after:
            fail(what + ": its validity is outside its issuer's")
    if ext(cert, x509.SubjectKeyIdentifier) is None:
        fail(what + ": no subjectKeyIdentifier")
    bc = ext(cert, x509.BasicConstraints)
    ku = ext(cert, x509.KeyUsage)
    if ku is None or not ku.critical:
        fail(what + ": no critical keyUsage")
    if bc is not None and bc.value.ca and not ku.value.key_cert_sign:
        fail(what + ": a CA without keyCertSign")
    if isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and ku.value.key_encipherment:
        fail(what + ": keyEncipherment on an EC key")
    if "--server" in args:
        name = args[args.index("--server") + 1]
        san = ext(cert, x509.SubjectAlternativeName)
        if san is None or name not in san.value.get_values_for_type(x509.DNSName):
            fail(what + ": " + name + " is not in subjectAltName")
        eku = ext(cert, x509.ExtendedKeyUsage)
        if eku is None or ExtendedKeyUsageOID.SERVER_AUTH not in eku.value:
            fail(what + ": no serverAuth")
        path_validate(cert, issuer, name)
    print(what + ": accepted")


def path_validate(leaf, issuer, name):
    """The x509 verification API where the installed version has it (42 and later)."""
    try:
        from cryptography.x509 import verification
    except ImportError:
        return
    root = issuer
    chain = []
    if issuer.issuer != issuer.subject:
        chain = [issuer]
        import os
        root = load_cert(os.path.join(os.path.dirname(sys.argv[3]), "root.pem"))
    store = verification.Store([root])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(
        x509.DNSName(name))
    try:
        verifier.verify(leaf, chain)
    except Exception as e:
        fail("x509 verification of " + name + ": " + str(e))


def cmd_crl(args):
    crl = load_crl(args[0])
    issuer = load_cert(args[1])
    what = args[0]
    _ = list(crl.extensions)
    if crl.issuer != issuer.subject:
        fail(what + ": its issuer is not the CA's subject")
    if not crl.is_signature_valid(issuer.public_key()):
        fail(what + ": the signature does not verify")
    if crl.next_update is None or crl.next_update < now() or crl.last_update > now():
        fail(what + ": not current")
    if ext(crl, x509.CRLNumber) is None:
        fail(what + ": no cRLNumber")
    delta = ext(crl, x509.DeltaCRLIndicator)
    if "--delta-of" in args:
        full = load_crl(args[args.index("--delta-of") + 1])
        if delta is None or not delta.critical:
            fail(what + ": a delta CRL without a critical Delta CRL Indicator")
        if delta.value.crl_number != full.extensions.get_extension_for_class(
                x509.CRLNumber).value.crl_number:
            fail(what + ": the delta's base is not the full CRL's number")
    else:
        if delta is not None:
            fail(what + ": a full CRL with a Delta CRL Indicator")
        if ext(crl, x509.IssuingDistributionPoint) is not None:
            fail(what + ": the full CRL carries an Issuing Distribution Point")
    print(what + ": accepted")


def cmd_revoked(args):
    cert = load_cert(args[0])
    crl = load_crl(args[1])
    issuer = load_cert(args[2])
    if not crl.is_signature_valid(issuer.public_key()):
        fail(args[1] + ": the signature does not verify")
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None:
        fail(args[1] + " does not list " + args[0])
    print(args[0] + ": revoked by " + args[1])


def cmd_ocsp(args):
    with open(args[0], "rb") as f:
        resp = ocsp.load_der_ocsp_response(f.read())
    cert = load_cert(args[1])
    issuer = load_cert(args[2])
    want = args[3]
    what = args[0]
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        fail(what + ": status " + str(resp.response_status))
    if resp.serial_number != cert.serial_number:
        fail(what + ": answers for another serial")
    status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}[want]
    if resp.certificate_status != status:
        fail(what + ": status " + str(resp.certificate_status) + ", not " + want)
    # The signer: the issuing CA itself, or a delegated signer it issued for OCSP signing.
    signer = issuer
    if resp.certificates:
        signer = resp.certificates[0]
        check_issued_by(signer, issuer, what + "'s signer")
        eku = ext(signer, x509.ExtendedKeyUsage)
        if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku.value:
            fail(what + ": the delegated signer has no OCSPSigning")
    verify_sig(signer.public_key(), resp.signature, resp.tbs_response_bytes,
               resp.signature_hash_algorithm, what)
    if resp.next_update is not None and resp.next_update < now():
        fail(what + ": expired")
    print(what + ": " + want + ", accepted")


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cmd = {"cert": cmd_cert, "crl": cmd_crl, "revoked": cmd_revoked, "ocsp": cmd_ocsp}
    if sys.argv[1] not in cmd:
        fail("unknown command " + sys.argv[1])
    cmd[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
