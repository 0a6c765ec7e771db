#!/usr/bin/python3
"""Test certificates for the TLS client tests, made with the `openssl` command.

Nothing here is committed: every run makes fresh keys in a temporary
directory and removes it afterwards.

    with tempfile.TemporaryDirectory() as directory:
        certs = make_certificates(directory)
        certs.cert, certs.key   # self-signed, valid for IP:127.0.0.1 and DNS:localhost
        certs.other_key         # an unrelated key (does not match certs.cert)
        certs.expired_cert      # self-signed with certs.key, valid only on 2020-01-01

Usage as a command (to try the examples by hand):
    python3 tests/clients/tls_certs.py DIR
"""

import os
import subprocess
import sys
from dataclasses import dataclass

SUBJECT = "/CN=localhost"
SUBJECT_ALT_NAME = "IP:127.0.0.1,DNS:localhost"
RSA_BITS = "2048"

# A minimal `openssl ca` configuration. OpenSSL 3.0 refuses `req -x509 -days -1`,
# but `ca -selfsign` takes any start and end date, so the certificate can be
# made already expired.
CA_CONFIG = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no

[ policy_any ]
commonName = supplied

[ server_cert ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = {san}
"""


@dataclass
class Certificates:
    directory: str
    cert: str
    key: str
    other_key: str
    expired_cert: str


def _openssl(*args):
    result = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")


def make_certificates(directory):
    """Writes the test keys and certificates into `directory`; returns their paths."""
    path = lambda name: os.path.join(directory, name)  # noqa: E731
    certs = Certificates(directory=directory, cert=path("cert.pem"), key=path("key.pem"),
                         other_key=path("other_key.pem"), expired_cert=path("expired_cert.pem"))

    # The certificate the server uses, trusted by the clients as their own CA.
    _openssl("req", "-x509", "-newkey", f"rsa:{RSA_BITS}", "-nodes", "-sha256", "-days", "7",
             "-subj", SUBJECT, "-addext", f"subjectAltName={SUBJECT_ALT_NAME}",
             "-keyout", certs.key, "-out", certs.cert)

    # A key that belongs to no certificate here.
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{RSA_BITS}",
             "-out", certs.other_key)

    # The same key, in a certificate that expired on 2020-01-02.
    ca_dir = path("ca")
    os.mkdir(ca_dir)
    with open(os.path.join(ca_dir, "index.txt"), "w"):
        pass
    with open(os.path.join(ca_dir, "serial"), "w") as f:
        f.write("01\n")
    config = os.path.join(ca_dir, "ca.cnf")
    with open(config, "w") as f:
        f.write(CA_CONFIG.format(dir=ca_dir, san=SUBJECT_ALT_NAME))
    request = os.path.join(ca_dir, "expired.csr")
    _openssl("req", "-new", "-key", certs.key, "-subj", SUBJECT, "-out", request)
    _openssl("ca", "-batch", "-config", config, "-selfsign", "-keyfile", certs.key,
             "-in", request, "-out", certs.expired_cert, "-notext", "-extensions", "server_cert",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")
    return certs


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} DIR", file=sys.stderr)
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    made = make_certificates(sys.argv[1])
    for field in ("cert", "key", "other_key", "expired_cert"):
        print(f"{field}: {getattr(made, field)}")
