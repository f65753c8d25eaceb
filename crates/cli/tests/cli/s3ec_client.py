"""The AWS S3 Encryption Client for Python 4.0.0, driven by the interop tests
(s3ec.rs) against the test endpoint (the AWS_* environment xtask sets).

    python s3ec_client.py KEY_ID BUCKET JOBS_JSON

JOBS_JSON is a list of jobs, run in one process (Python and boto3 start
slowly): {"op": "put" | "get", "key": KEY, "path": PATH, "context": {...}
or null, "v2": bool}. `put` writes PATH with upload_file (one PutObject
below 8 MiB, else multipart in 8 MiB parts); `get` reads with get_object
into PATH. Prints one JSON line per job: {"ok": true} or {"ok": false,
"error": "..."} with the client's refusal.
"""
import json
import sys

import boto3
from botocore.config import Config
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials.kms_keyring import KmsKeyring
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy

key_id, bucket, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
kms = boto3.client("kms")
# Path-style requests: local endpoints (moto, s3s-fs) have no bucket DNS.
path_style = Config(s3={"addressing_style": "path"})
# Each encryption client hooks into a boto3 client of its own.
v3 = S3EncryptionClient(
    boto3.client("s3", config=path_style),
    S3EncryptionClientConfig(
        keyring=KmsKeyring(kms, key_id),
        # Reads V2 and V3, writes V3 (the client's default suite).
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
    ),
)
v2 = S3EncryptionClient(
    boto3.client("s3", config=path_style),
    S3EncryptionClientConfig(
        keyring=KmsKeyring(kms, key_id),
        encryption_algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    ),
)
for job in jobs:
    client = v2 if job.get("v2") else v3
    kwargs = {} if job.get("context") is None else {"EncryptionContext": job["context"]}
    try:
        if job["op"] == "put":
            client.upload_file(job["path"], bucket, job["key"], **kwargs)
        else:
            body = client.get_object(Bucket=bucket, Key=job["key"], **kwargs)["Body"].read()
            with open(job["path"], "wb") as f:
                f.write(body)
        print(json.dumps({"ok": True}), flush=True)
    except Exception as e:  # the client's refusal is the test's answer
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
