#!/usr/bin/env bash
# What earlier test runs left behind in the shared test services: every test
# makes a fresh PostgreSQL database and writes under its own prefix of the
# Garage bucket, and neither is removed when the test ends (a failed test's
# data is worth looking at). Without this, repeated runs fill the disk.
# Called by scripts/test.sh before the suite; expects scripts/test-env.sh to
# have been sourced. A database still in use (another run) is left alone.
set -euo pipefail

psql "$BERTH_TEST_POSTGRES_URL" -Atqc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'berth\_test\_%' OR datname LIKE 'bench\_%'" |
  while read -r db; do
    psql "$BERTH_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
  done

# The bucket: every object and unfinished multipart upload (boto3 from the
# moto environment).
"$BERTH_TEST_DIR/moto-venv/bin/python" - <<'PY'
import os
import boto3
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["BERTH_TEST_S3_ENDPOINT"],
    region_name=os.environ["BERTH_TEST_S3_REGION"],
    aws_access_key_id=os.environ["BERTH_TEST_S3_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["BERTH_TEST_S3_SECRET_ACCESS_KEY"],
)
bucket = os.environ["BERTH_TEST_S3_BUCKET"]
removed = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        removed += len(keys)
for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
    for u in page.get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
print(f"test-clean: removed {removed} objects from the test bucket")
PY
