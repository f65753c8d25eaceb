"""A TLS endpoint for the --ca-bundle test: makes a CA and a certificate it
signed for 127.0.0.1 (writing the CA to DIR/ca.pem), then answers every
request on a free port (printed first) with an empty ListObjectsV2 page."""
import datetime
import ipaddress
import socket
import ssl
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
hour = datetime.timedelta(hours=1)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, issuer, public_key, signer, serial, extensions):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now - hour)
        .not_valid_after(now + hour)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = certificate(
    name("atrest test CA"), name("atrest test CA"), ca_key.public_key(), ca_key, 1,
    [(x509.BasicConstraints(ca=True, path_length=None), True)],
)
key = ec.generate_private_key(ec.SECP256R1())
leaf = certificate(
    name("127.0.0.1"), ca.subject, key.public_key(), ca_key, 2,
    [
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    ],
)
with open(f"{out}/ca.pem", "wb") as f:
    f.write(ca.public_bytes(serialization.Encoding.PEM))
with open(f"{out}/leaf.pem", "wb") as f:
    f.write(leaf.public_bytes(serialization.Encoding.PEM))
with open(f"{out}/leaf.key", "wb") as f:
    f.write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(f"{out}/leaf.pem", f"{out}/leaf.key")
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)

BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
    b"<Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)
REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n" % len(BODY)
) + BODY


def serve(connection):
    try:
        tls = context.wrap_socket(connection, server_side=True)
        tls.recv(65536)
        tls.sendall(REPLY)
        tls.close()
    except (ssl.SSLError, OSError):
        # An untrusting client hangs up during the handshake.
        connection.close()


while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
