"""The AWS S3 Encryption Client for Python 4.0.0, driven by the interop tests
(s3ec.rs) against the test endpoint (the AWS_* environment xtask sets).

    put KEY_ID BUCKET KEY FILE [--v2] [--context JSON]
    get KEY_ID BUCKET KEY OUT [--context JSON]

`put` writes FILE with upload_file (one PutObject below 8 MiB, else
multipart in 8 MiB parts); `get` reads with get_object into OUT. Either
exits 1 with the client's error on stderr when it refuses.
"""
import argparse
import json
import sys

import boto3
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials.kms_keyring import KmsKeyring
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy

parser = argparse.ArgumentParser()
parser.add_argument("op", choices=["put", "get"])
parser.add_argument("key_id")
parser.add_argument("bucket")
parser.add_argument("key")
parser.add_argument("path")
parser.add_argument("--v2", action="store_true")
parser.add_argument("--context", default=None)
args = parser.parse_args()

keyring = KmsKeyring(boto3.client("kms"), args.key_id)
if args.v2:
    config = S3EncryptionClientConfig(
        keyring=keyring,
        encryption_algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    )
else:
    # Reads V2 and V3, writes V3 (the client's default suite).
    config = S3EncryptionClientConfig(
        keyring=keyring, commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
    )
client = S3EncryptionClient(boto3.client("s3"), config)
kwargs = {} if args.context is None else {"EncryptionContext": json.loads(args.context)}
try:
    if args.op == "put":
        client.upload_file(args.path, args.bucket, args.key, **kwargs)
    else:
        body = client.get_object(Bucket=args.bucket, Key=args.key, **kwargs)["Body"].read()
        with open(args.path, "wb") as f:
            f.write(body)
except Exception as e:  # the client's refusal is the test's answer
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
