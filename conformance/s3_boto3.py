"""boto3 (Debian's python3-boto3) against Stratus's S3 API: the calls an application makes.

    s3_boto3.py ENDPOINT BUCKET   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION from the environment)

Prints one line per step, `ok STEP` or `not ok STEP: why`, for conformance/object-cli.sh to
count: bucket, put, get, list, metadata, multipart, presigned-get, presigned-put, tagging, cors,
lifecycle, presigned-post, delete.
Exits 1 if a step failed.
"""
import hashlib
import os
import sys
import json
import urllib.error
import urllib.request
import uuid

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                retries={"max_attempts": 1}))
failed = False


def step(name, fn):
    global failed
    try:
        fn()
        print("ok %s" % name, flush=True)
    except Exception as e:  # report and go on: every step is a check of its own
        failed = True
        print("not ok %s: %s: %s" % (name, type(e).__name__, str(e).replace("\n", " ")[:400]), flush=True)


def must(cond, what):
    if not cond:
        raise AssertionError(what)


body = os.urandom(100 * 1024)


def put():
    r = s3.put_object(Bucket=bucket, Key="dir/one.bin", Body=body, ContentType="application/x-test",
                      Metadata={"color": "blue"})
    must(r["ETag"].strip('"') == hashlib.md5(body).hexdigest(), "ETag %s is not the MD5" % r["ETag"])


def get():
    r = s3.get_object(Bucket=bucket, Key="dir/one.bin")
    must(r["Body"].read() == body, "the bytes differ")
    must(r["ContentType"] == "application/x-test", "content type %r" % r["ContentType"])
    part = s3.get_object(Bucket=bucket, Key="dir/one.bin", Range="bytes=10-19")["Body"].read()
    must(part == body[10:20], "the range differs")


def metadata():
    h = s3.head_object(Bucket=bucket, Key="dir/one.bin")
    must(h["Metadata"].get("color") == "blue", "metadata %r" % h["Metadata"])
    must(h["ContentLength"] == len(body), "length %r" % h["ContentLength"])


def listing():
    s3.put_object(Bucket=bucket, Key="dir/two.bin", Body=b"two")
    s3.put_object(Bucket=bucket, Key="top.txt", Body=b"top")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["Contents"]]
    must(keys == ["dir/one.bin", "dir/two.bin"], "prefix listing %r" % keys)
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    must([p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["dir/"], "common prefixes %r" % r.get("CommonPrefixes"))
    must([o["Key"] for o in r.get("Contents", [])] == ["top.txt"], "delimited keys %r" % r.get("Contents"))
    v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket, MaxKeys=2)["Contents"]]
    must(v1 == ["dir/one.bin", "dir/two.bin"], "ListObjects (v1) MaxKeys=2: %r" % v1)


def multipart():
    big = os.urandom(12 * 1024 * 1024 + 1234)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "boto3-multipart-%d" % os.getpid())
    with open(path, "wb") as f:
        f.write(big)
    try:
        cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
        s3.upload_file(path, bucket, "big.bin", Config=cfg)
    finally:
        os.unlink(path)
    h = s3.head_object(Bucket=bucket, Key="big.bin")
    must(h["ETag"].strip('"').endswith("-3"), "a 3-part upload's ETag ends in -3: %s" % h["ETag"])
    must(s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == big, "the bytes differ")
    # the low-level calls, and an abort leaves nothing
    up = s3.create_multipart_upload(Bucket=bucket, Key="aborted.bin")
    s3.upload_part(Bucket=bucket, Key="aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 10)
    parts = s3.list_parts(Bucket=bucket, Key="aborted.bin", UploadId=up["UploadId"])["Parts"]
    must([p["PartNumber"] for p in parts] == [1], "list parts %r" % parts)
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted.bin", UploadId=up["UploadId"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    must("aborted.bin" not in keys, "an aborted upload is listed")


def presigned_get():
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/one.bin"}, ExpiresIn=300)
    with urllib.request.urlopen(url) as r:
        must(r.read() == body, "the presigned GET's bytes differ")


def presigned_put():
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned.txt"}, ExpiresIn=300)
    req = urllib.request.Request(url, data=b"put through a presigned URL", method="PUT")
    with urllib.request.urlopen(req) as r:
        must(r.status == 200, "status %d" % r.status)
    got = s3.get_object(Bucket=bucket, Key="presigned.txt")["Body"].read()
    must(got == b"put through a presigned URL", "read back %r" % got)


def tagging():
    s3.put_object(Bucket=bucket, Key="tagged.txt", Body=b"tagged", Tagging="team=storage&tier=hot")
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged.txt")["TagSet"]
    must(sorted((t["Key"], t["Value"]) for t in tags) == [("team", "storage"), ("tier", "hot")], "tags %r" % tags)
    s3.put_object_tagging(Bucket=bucket, Key="tagged.txt", Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    must(s3.get_object(Bucket=bucket, Key="tagged.txt").get("TagCount") == 1, "TagCount after PutObjectTagging")
    s3.delete_object_tagging(Bucket=bucket, Key="tagged.txt")
    must(s3.get_object_tagging(Bucket=bucket, Key="tagged.txt")["TagSet"] == [], "tags left after delete")


def cors():
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["GET", "POST"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 120}]})
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    must(rules[0]["AllowedOrigins"] == ["https://*.example.org"], "rules %r" % rules)
    req = urllib.request.Request("%s/%s/dir/one.bin" % (endpoint, bucket), method="OPTIONS", headers={
        "Origin": "https://app.example.org", "Access-Control-Request-Method": "GET"})
    with urllib.request.urlopen(req) as r:
        must(r.headers.get("Access-Control-Allow-Origin") == "https://app.example.org", "preflight %r" % dict(r.headers))
    s3.delete_bucket_cors(Bucket=bucket)
    try:
        s3.get_bucket_cors(Bucket=bucket)
        raise AssertionError("the CORS configuration is still there")
    except s3.exceptions.ClientError as e:
        must(e.response["Error"]["Code"] == "NoSuchCORSConfiguration", "code %r" % e.response["Error"])


def lifecycle():
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    must([r["ID"] for r in rules] == ["logs"], "rules %r" % rules)
    r = s3.put_object(Bucket=bucket, Key="logs/a.log", Body=b"log")
    must('rule-id="logs"' in r.get("Expiration", ""), "PutObject's Expiration %r" % r.get("Expiration"))
    s3.delete_bucket_lifecycle(Bucket=bucket)


def presigned_post():
    p = s3.generate_presigned_post(bucket, "posted/${filename}", Fields={"Content-Type": "text/plain"},
                                   Conditions=[{"Content-Type": "text/plain"}, ["content-length-range", 1, 1024]], ExpiresIn=300)
    boundary = uuid.uuid4().hex
    parts = [b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary.encode(), k.encode(), v.encode())
             for k, v in p["fields"].items()]
    parts.append(b'--%s\r\nContent-Disposition: form-data; name="file"; filename="form.txt"\r\n'
                 b'Content-Type: text/plain\r\n\r\nposted through a form\r\n--%s--\r\n' % (boundary.encode(), boundary.encode()))
    req = urllib.request.Request(p["url"], data=b"".join(parts), method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})
    with urllib.request.urlopen(req) as r:
        must(r.status == 204, "status %d" % r.status)
    got = s3.get_object(Bucket=bucket, Key="posted/form.txt")
    must(got["Body"].read() == b"posted through a form", "the posted bytes differ")
    must(got["ContentType"] == "text/plain", "content type %r" % got["ContentType"])


def delete():
    keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    must(len(r.get("Deleted", [])) == len(keys) and not r.get("Errors"), "DeleteObjects %r" % r)
    s3.delete_bucket(Bucket=bucket)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    must(bucket not in names, "the bucket is still listed")


step("bucket", lambda: s3.create_bucket(Bucket=bucket))
step("put", put)
step("get", get)
step("metadata", metadata)
step("list", listing)
step("multipart", multipart)
step("presigned-get", presigned_get)
step("presigned-put", presigned_put)
step("tagging", tagging)
step("cors", cors)
step("lifecycle", lifecycle)
step("presigned-post", presigned_post)
step("delete", delete)
sys.exit(1 if failed else 0)
