#!/usr/bin/env bash
# Conformance of the object storage clients, all Debian packages, against an all-in-one cloud
# (lib.sh): `openstack container/object`, the `swift` CLI (python3-swiftclient: listings,
# metadata, DLO and SLO uploads, TempURL), `aws s3`/`aws s3api` (awscli: multipart, presign)
# with keys from `openstack ec2 credentials create`, s3cmd (SigV4 and V2, multipart), a boto3
# script (conformance/s3_boto3.py), `openstack object create` and `aws s3 cp` reading each
# other's objects, skopeo and podman against the OCI registry, a server booted from a pushed
# image, and a server killed with -9 in the middle of uploads that loses nothing it
# acknowledged (conformance/object_durability.py).
#
# Each step is a named check (conformance/checks.sh). A flow whose piece the cloud does not
# serve (no object-store in the catalog, no /s3, no /v2 registry, a middleware /info does not
# announce) is skipped with the reason, counted apart. Ends with `N passed, N failed[, N skipped]`;
# exits 1 if a check failed, 2 if the cloud did not start.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
cloud_start
. "$STRATUS_ROOT/conformance/checks.sh"

work=$_cloud_tmp/object-cli
mkdir -p "$work"
os() { env PATH="$DEBIAN_PATH" OS_CLIENT_CONFIG_FILE="$OS_CLOUDS_FILE" openstack --os-cloud stratus "$@"; }
# openstack from the work directory (object names are the file names given)
osw() { (cd "$work" && os "$@"); }
swiftc() {
  env PATH="$DEBIAN_PATH" OS_AUTH_URL="$CLOUD_AUTH_URL" OS_IDENTITY_API_VERSION=3 OS_USERNAME="$ADMIN_USER" \
    OS_PASSWORD="$ADMIN_PASSWORD" OS_PROJECT_NAME="$ADMIN_PROJECT" OS_USER_DOMAIN_NAME="$ADMIN_USER_DOMAIN" \
    OS_PROJECT_DOMAIN_NAME="$ADMIN_PROJECT_DOMAIN" OS_REGION_NAME="$CLOUD_REGION" swift --auth-version 3 "$@"
}
same() { cmp -s "$1" "$2" || { echo "$1 and $2 differ"; return 1; }; }
md5() { md5sum "$1" | cut -d' ' -f1; }
code() { curl -s -o /dev/null -m 20 -w '%{http_code}' "$@"; }

head -c 3000 /dev/urandom | base64 >"$work/small.txt"
head -c $((1024 * 1024 + 17)) /dev/urandom >"$work/rand.bin"
# 12 MiB and a bit: three 5 MiB parts for S3's multipart, thirteen 1 MiB segments for Swift's
head -c $((12 * 1024 * 1024 + 4321)) /dev/urandom >"$work/big.bin"

# --- what the cloud serves
token=$(os token issue -f value -c id 2>/dev/null)
account_url=$(os catalog show object-store -f json 2>/dev/null | dpython -c '
import json, sys
try:
    eps = json.load(sys.stdin)["endpoints"]
except Exception:
    sys.exit(0)
# a list of {interface, url} (or, from older clients, text lines "public: URL")
if isinstance(eps, list):
    print(next((e["url"] for e in eps if e.get("interface") == "public"), ""))
else:
    import re
    m = re.search(r"public: (\S+)", str(eps))
    print(m.group(1) if m else "")')
account_path=${account_url#"$CLOUD_URL"}   # /object/v1/AUTH_<project id>
info=$(curl -sf -m 10 "$CLOUD_URL/object/info" 2>/dev/null || true)
announces() { [ -n "$info" ] && dpython -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.loads(sys.argv[1]) else 1)' "$info" "$1"; }
s3_code=$(code "$CLOUD_URL/s3/")
registry_code=$(code "$CLOUD_URL/v2/")
no_swift="no object-store endpoint in the catalog (the Swift API is not in this build)"
no_s3="no S3 API at $CLOUD_URL/s3/ (it answered $s3_code)"
no_registry="no OCI registry at $CLOUD_URL/v2/ (it answered $registry_code)"
has_s3() { [ "$s3_code" != 404 ] && [ "$s3_code" != 000 ]; }
has_registry() { [ "$registry_code" = 401 ] || [ "$registry_code" = 200 ]; }
echo "# object-store: ${account_url:-none}; /object/info: $([ -n "$info" ] && echo yes || echo no); /s3/: $s3_code; /v2/: $registry_code"

# --- openstack container / object (python3-openstackclient's object commands, Swift underneath)
if [ -n "$account_url" ]; then
  check_has "container create" cli-c1 -- os container create cli-c1 -f value
  check_has "container list shows it" cli-c1 -- os container list -f value
  check "object create" osw object create cli-c1 small.txt rand.bin
  check_has "object list" small.txt rand.bin -- os object list cli-c1 -f value
  check_has "object show: the MD5 as its etag, the size" "$(md5 "$work/small.txt")" "$(stat -c %s "$work/small.txt")" -- os object show cli-c1 small.txt -f value
  check "object save --file" os object save --file "$work/saved.txt" cli-c1 small.txt
  check "the saved object is the file" same "$work/small.txt" "$work/saved.txt"
  check "object set --property" os object set --property color=blue cli-c1 small.txt
  check_has "object show has the property" blue -- os object show cli-c1 small.txt -f value
  check "object unset --property" os object unset --property color cli-c1 small.txt
  check_lacks "object show lacks the property" blue -- os object show cli-c1 small.txt -f value
  check "container set --property" os container set --property team=storage cli-c1
  check_has "container show: its property and object count" storage 2 -- os container show cli-c1 -f value
  check "container unset --property" os container unset --property team cli-c1
  check_lacks "container show lacks the property" storage -- os container show cli-c1 -f value
  mkdir -p "$work/save"
  check "container save (every object into the current directory)" sh -c "cd '$work/save' && env PATH='$DEBIAN_PATH' OS_CLIENT_CONFIG_FILE='$OS_CLOUDS_FILE' openstack --os-cloud stratus container save cli-c1"
  check "container save wrote the objects" sh -c "cmp '$work/save/small.txt' '$work/small.txt' && cmp '$work/save/rand.bin' '$work/rand.bin'"
  check_fails_after "object create" "container delete of a container with objects fails" os container delete cli-c1
  check "object delete" os object delete cli-c1 small.txt
  check_lacks "object list after delete" small.txt -- os object list cli-c1 -f value
  check "container delete --recursive" os container delete --recursive cli-c1
  check_lacks "container list after delete" cli-c1 -- os container list -f value
else
  skip "openstack container/object flow" "$no_swift"
fi

# --- the swift CLI
if [ -n "$account_url" ]; then
  check "swift upload (object names with /)" swiftc upload cli-swift "$work/small.txt" --object-name docs/a.txt
  check "swift upload (second)" swiftc upload cli-swift "$work/rand.bin" --object-name docs/b.bin
  check "swift upload (top level)" swiftc upload cli-swift "$work/small.txt" --object-name top.txt
  check_has "swift list" docs/a.txt docs/b.bin top.txt -- swiftc list cli-swift
  check_lacks "swift list --prefix docs/" top.txt -- swiftc list cli-swift --prefix docs/
  check_has "swift list --prefix docs/ has both" docs/a.txt docs/b.bin -- swiftc list cli-swift --prefix docs/
  check_has "swift list --delimiter /" docs/ top.txt -- swiftc list cli-swift --delimiter /
  check_lacks "swift list --delimiter / rolls docs/ up" docs/a.txt -- swiftc list cli-swift --delimiter /
  check_has "swift stat (account)" "Containers:" "Objects:" -- swiftc stat
  check_has "swift stat (container)" "Objects: 3" -- swiftc stat cli-swift
  check_has "swift stat (object): ETag is the MD5" "$(md5 "$work/rand.bin")" -- swiftc stat cli-swift docs/b.bin
  check "swift post -m (object metadata)" swiftc post -m color:red cli-swift docs/a.txt
  check_has "swift stat shows the metadata" "Meta Color: red" -- swiftc stat cli-swift docs/a.txt
  check "swift post -m (container metadata)" swiftc post -m owner:cli cli-swift
  check_has "swift stat shows the container metadata" "Meta Owner: cli" -- swiftc stat cli-swift
  check "swift download -o" swiftc download cli-swift docs/b.bin -o "$work/dl.bin"
  check "the download is the upload" same "$work/rand.bin" "$work/dl.bin"
  # symlinks: a zero-byte upload with X-Symlink-Target reads as its target
  if announces symlink; then
    : >"$work/empty"
    check "swift upload -H X-Symlink-Target (a symlink)" swiftc upload cli-swift "$work/empty" --object-name link.bin -H "X-Symlink-Target: cli-swift/docs/b.bin"
    check "swift download of the symlink" swiftc download cli-swift link.bin -o "$work/link.out"
    check "the symlink reads as its target" same "$work/rand.bin" "$work/link.out"
    check_has "swift list --json: the symlink's symlink_path" '"symlink_path": "/object/v1/' -- swiftc list cli-swift --prefix link --json
  else
    skip "swift symlink" "/object/info does not announce symlink"
  fi
  # large objects: DLO (segments in cli-swift_segments, an X-Object-Manifest) and SLO (a manifest of segments)
  # (Swift's dlo middleware registers nothing in /info: DLO comes with the middleware set that serves /info)
  if [ -n "$info" ]; then
    check "swift upload --segment-size 1M (DLO)" swiftc upload cli-swift "$work/big.bin" --object-name dlo.bin --segment-size 1048576
    check_has "swift stat: a DLO manifest" "Manifest: cli-swift_segments/dlo.bin/" -- swiftc stat cli-swift dlo.bin
    check "swift download of the DLO" swiftc download cli-swift dlo.bin -o "$work/dlo.out"
    check "the DLO's bytes are the file's" same "$work/big.bin" "$work/dlo.out"
  else
    skip "swift upload --segment-size (DLO)" "no /object/info: Swift's middleware (DLO among them) is not in this build"
  fi
  if announces slo; then
    check "swift upload --use-slo --segment-size 1M (SLO)" swiftc upload cli-swift "$work/big.bin" --object-name slo.bin --segment-size 1048576 --use-slo
    check_has "the SLO is a static large object (HEAD)" "x-static-large-object: true" -- \
      sh -c "curl -sfI -H 'X-Auth-Token: $token' '$account_url/cli-swift/slo.bin' | tr A-Z a-z"
    check "swift download of the SLO" swiftc download cli-swift slo.bin -o "$work/slo.out"
    check "the SLO's bytes are the file's" same "$work/big.bin" "$work/slo.out"
    check "swift delete of the SLO (its segments too)" swiftc delete cli-swift slo.bin
    check_lacks "no segment of the SLO is left" slo.bin -- swiftc list cli-swift_segments
  else
    skip "swift upload --use-slo (SLO)" "/object/info does not announce slo"
  fi
  if announces tempurl; then
    key=tk-$RANDOM$RANDOM
    check "swift post -m Temp-URL-Key (account)" swiftc post -m "Temp-URL-Key:$key"
    # signed over the path the client sends, as Tempest signs it (the endpoint's path and the object)
    check "swift tempurl GET" swiftc tempurl GET 300 "$account_path/cli-swift/docs/b.bin" "$key"
    tempurl=$OUT
    check "the TempURL GET reads the object without a token" curl -sf -m 20 -o "$work/tempurl.bin" "$CLOUD_URL$tempurl"
    check "the TempURL's bytes are the object's" same "$work/rand.bin" "$work/tempurl.bin"
    check_has "a TempURL signed with another key is refused (401)" 401 -- \
      code "$CLOUD_URL$(swiftc tempurl GET 300 "$account_path/cli-swift/docs/b.bin" wrong-key 2>/dev/null)"
    check "swift tempurl PUT" swiftc tempurl PUT 300 "$account_path/cli-swift/via-tempurl.txt" "$key"
    check_has "the TempURL PUT stores an object without a token (201)" 201 -- code -X PUT --data-binary @"$work/small.txt" "$CLOUD_URL$OUT"
    check_has "swift list shows the object put through the TempURL" via-tempurl.txt -- swiftc list cli-swift
  else
    skip "swift tempurl" "/object/info does not announce tempurl"
  fi
  check "swift delete (container and every object)" swiftc delete cli-swift
  swiftc delete cli-swift_segments >/dev/null 2>&1
  check_lacks "swift list after delete" cli-swift -- swiftc list
else
  skip "swift CLI flow" "$no_swift"
fi

# --- S3: keys from Keystone's EC2 credentials, then aws, s3cmd and boto3
if [ -n "$account_url" ] && has_s3; then
  check "ec2 credentials create" os ec2 credentials create -f shell -c access -c secret
  s3_access=$(sed -n 's/^access="\(.*\)"$/\1/p' <<<"$OUT") s3_secret=$(sed -n 's/^secret="\(.*\)"$/\1/p' <<<"$OUT")
  # the region S3 reports (any region signed is accepted)
  s3_region=${STRATUS_S3_REGION:-us-east-1}
  # multipart from 5 MiB up in 5 MiB parts (S3's smallest part)
  printf '[default]\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n' >"$work/aws-config"
  awsc() {
    env PATH="$DEBIAN_PATH" AWS_ACCESS_KEY_ID="$s3_access" AWS_SECRET_ACCESS_KEY="$s3_secret" AWS_DEFAULT_REGION="$s3_region" \
      AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
      aws --endpoint-url "$CLOUD_URL" "$@"
  }
  check "aws s3 mb" awsc s3 mb s3://cli-bucket
  check_has "aws s3 ls lists the bucket" cli-bucket -- awsc s3 ls
  check "aws s3 cp (upload)" awsc s3 cp "$work/small.txt" s3://cli-bucket/dir/small.txt
  check_has "aws s3 ls s3://bucket/dir/" small.txt -- awsc s3 ls s3://cli-bucket/dir/
  check "aws s3 cp (download)" awsc s3 cp s3://cli-bucket/dir/small.txt "$work/s3-small.txt"
  check "the S3 download is the upload" same "$work/small.txt" "$work/s3-small.txt"
  check "aws s3 cp of 12 MiB (multipart, 5 MiB parts)" awsc s3 cp "$work/big.bin" s3://cli-bucket/big.bin
  check_has "aws s3api head-object: a 3-part ETag" -3 -- awsc s3api head-object --bucket cli-bucket --key big.bin --query ETag --output text
  check "aws s3 cp of the multipart object (download)" awsc s3 cp s3://cli-bucket/big.bin "$work/s3-big.bin"
  check "the multipart object's bytes are the file's" same "$work/big.bin" "$work/s3-big.bin"
  check "aws s3api put-object --metadata" awsc s3api put-object --bucket cli-bucket --key meta.txt --body "$work/small.txt" --metadata color=green
  check_has "aws s3api head-object shows the metadata" green -- awsc s3api head-object --bucket cli-bucket --key meta.txt
  check_has "aws s3api list-objects-v2 --prefix" dir/small.txt -- awsc s3api list-objects-v2 --bucket cli-bucket --prefix dir/ --query 'Contents[].Key' --output text
  check_has "aws s3api get-object --range" '"ContentLength": 10' -- awsc s3api get-object --bucket cli-bucket --key dir/small.txt --range bytes=0-9 "$work/range.out"
  check "aws s3 presign" awsc s3 presign s3://cli-bucket/dir/small.txt --expires-in 300
  presigned=$OUT
  check "the presigned URL reads the object with curl" curl -sf -m 20 -o "$work/presigned.txt" "$presigned"
  check "the presigned download is the object" same "$work/small.txt" "$work/presigned.txt"
  # the signature's last hex digit changed (to 1 if it was 0: replacing it by 0 would leave a 0 as it was)
  [ "${presigned: -1}" = 0 ] && other_digit=1 || other_digit=0
  check_has "a presigned URL with a changed signature is refused (403)" 403 -- code "${presigned%?}$other_digit"
  # tagging, CORS and lifecycle through aws s3api
  check "aws s3api put-object-tagging" awsc s3api put-object-tagging --bucket cli-bucket --key meta.txt --tagging 'TagSet=[{Key=team,Value=storage}]'
  check_has "aws s3api get-object-tagging" storage -- awsc s3api get-object-tagging --bucket cli-bucket --key meta.txt --query 'TagSet[].Value' --output text
  printf '{"CORSRules":[{"AllowedOrigins":["https://app.example"],"AllowedMethods":["GET","PUT"],"AllowedHeaders":["*"],"MaxAgeSeconds":60}]}' >"$work/cors.json"
  check "aws s3api put-bucket-cors" awsc s3api put-bucket-cors --bucket cli-bucket --cors-configuration "file://$work/cors.json"
  check_has "aws s3api get-bucket-cors" https://app.example -- awsc s3api get-bucket-cors --bucket cli-bucket --query 'CORSRules[].AllowedOrigins' --output text
  check_has "a CORS preflight is answered from the rules" "access-control-allow-origin: https://app.example" -- \
    sh -c "curl -s -m 20 -o /dev/null -D - -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: PUT' '$CLOUD_URL/cli-bucket/meta.txt' | tr A-Z a-z"
  printf '{"Rules":[{"ID":"tmp","Filter":{"Prefix":"tmp/"},"Status":"Enabled","Expiration":{"Days":7}}]}' >"$work/lifecycle.json"
  check "aws s3api put-bucket-lifecycle-configuration" awsc s3api put-bucket-lifecycle-configuration --bucket cli-bucket --lifecycle-configuration "file://$work/lifecycle.json"
  check_has "aws s3api get-bucket-lifecycle-configuration" tmp -- awsc s3api get-bucket-lifecycle-configuration --bucket cli-bucket --query 'Rules[].ID' --output text
  check "aws s3 cp under the rule's prefix" awsc s3 cp "$work/small.txt" s3://cli-bucket/tmp/x.txt
  check_has "aws s3api head-object: the rule's expiration" 'rule-id=\"tmp\"' -- awsc s3api head-object --bucket cli-bucket --key tmp/x.txt --query Expiration --output json
  check "aws s3 rm" awsc s3 rm s3://cli-bucket/dir/small.txt
  check_lacks "aws s3 ls after rm" small.txt -- awsc s3 ls --recursive s3://cli-bucket/
  check "aws s3 rb --force" awsc s3 rb --force s3://cli-bucket
  check_lacks "aws s3 ls after rb" cli-bucket -- awsc s3 ls

  # the done-when: one store under both APIs
  check "container create (shared)" os container create cli-shared
  check "openstack object create (shared)" osw object create cli-shared small.txt
  check "aws s3 cp reads the object openstack wrote" awsc s3 cp s3://cli-shared/small.txt "$work/x-small.txt"
  check "the bytes aws read are the file's" same "$work/small.txt" "$work/x-small.txt"
  check "aws s3 cp writes an object into the container" awsc s3 cp "$work/rand.bin" s3://cli-shared/from-s3.bin
  check "openstack object save reads the object aws wrote" os object save --file "$work/x-rand.bin" cli-shared from-s3.bin
  check "the bytes openstack read are the file's" same "$work/rand.bin" "$work/x-rand.bin"
  check_has "openstack object list shows both" small.txt from-s3.bin -- os object list cli-shared -f value
  check "aws s3 rm --recursive (shared)" awsc s3 rm --recursive s3://cli-shared/
  check "container delete (shared, emptied through S3)" os container delete cli-shared

  # s3cmd: path-style, SigV4 by default, V2 with --signature-v2
  cat >"$work/s3cfg" <<EOF
[default]
access_key = $s3_access
secret_key = $s3_secret
host_base = 127.0.0.1:$CLOUD_PORT
host_bucket = 127.0.0.1:$CLOUD_PORT
use_https = False
signature_v2 = False
bucket_location = $s3_region
multipart_chunk_size_mb = 5
EOF
  s3c() { env PATH="$DEBIAN_PATH" s3cmd -c "$work/s3cfg" "$@"; }
  check "s3cmd mb" s3c mb s3://cli-s3cmd
  check "s3cmd put" s3c put "$work/small.txt" s3://cli-s3cmd/small.txt
  check_has "s3cmd ls" s3://cli-s3cmd/small.txt -- s3c ls s3://cli-s3cmd
  check "s3cmd get" s3c get --force s3://cli-s3cmd/small.txt "$work/s3cmd-small.txt"
  check "the s3cmd download is the upload" same "$work/small.txt" "$work/s3cmd-small.txt"
  check "s3cmd put of 12 MiB (multipart, 5 MiB parts)" s3c put "$work/big.bin" s3://cli-s3cmd/big.bin
  check "s3cmd get of the multipart object" s3c get --force s3://cli-s3cmd/big.bin "$work/s3cmd-big.bin"
  check "the s3cmd multipart object's bytes are the file's" same "$work/big.bin" "$work/s3cmd-big.bin"
  check "s3cmd put --signature-v2 (AWS V2 signature)" s3c --signature-v2 put "$work/rand.bin" s3://cli-s3cmd/v2.bin
  check "s3cmd get --signature-v2" s3c --signature-v2 get --force s3://cli-s3cmd/v2.bin "$work/s3cmd-v2.bin"
  check "the V2-signed object's bytes are the file's" same "$work/rand.bin" "$work/s3cmd-v2.bin"
  check "s3cmd del" s3c del s3://cli-s3cmd/small.txt s3://cli-s3cmd/big.bin s3://cli-s3cmd/v2.bin
  check "s3cmd rb" s3c rb s3://cli-s3cmd

  # boto3: one run, one check per step it reports
  boto_out=$(cd "$work" && env PATH="$DEBIAN_PATH" TMPDIR="$work" AWS_ACCESS_KEY_ID="$s3_access" AWS_SECRET_ACCESS_KEY="$s3_secret" \
    AWS_DEFAULT_REGION="$s3_region" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    python3 "$STRATUS_ROOT/conformance/s3_boto3.py" "$CLOUD_URL" cli-boto3 2>&1)
  for step in bucket put get metadata list multipart presigned-get presigned-put tagging cors lifecycle presigned-post delete; do
    if grep -qx "ok $step" <<<"$boto_out"; then ok "boto3 $step"
    else not_ok "boto3 $step" "$(grep -E "^not ok $step:" <<<"$boto_out" || tail -n 5 <<<"$boto_out")"; fi
  done
else
  skip "S3 flows (aws, s3cmd, boto3)" "$([ -z "$account_url" ] && echo "$no_swift" || echo "$no_s3")"
fi

# --- the OCI registry: skopeo and podman, then a server booted from a pushed image
if has_registry; then
  registry=127.0.0.1:$CLOUD_PORT
  repo=$registry/$ADMIN_PROJECT
  creds=$ADMIN_USER:$ADMIN_PASSWORD
  sk() { env PATH="$DEBIAN_PATH" skopeo "$@"; }
  check "build an OCI image archive from Debian's busybox-static (stratus image build-busybox)" \
    "$STRATUS_ROOT/bin/stratus" image build-busybox --output "$work/busybox.tar"
  check "skopeo copy (push) to the registry" sk copy --quiet --dest-tls-verify=false --dest-creds "$creds" \
    "oci-archive:$work/busybox.tar" "docker://$repo/cli-busybox:1"
  check_has "skopeo inspect (the manifest by tag)" '"Digest": "sha256:' -- sk inspect --tls-verify=false --creds "$creds" "docker://$repo/cli-busybox:1"
  check_has "skopeo list-tags" '"1"' -- sk list-tags --tls-verify=false --creds "$creds" "docker://$repo/cli-busybox"
  check "skopeo copy (pull) from the registry" sk copy --quiet --src-tls-verify=false --src-creds "$creds" \
    "docker://$repo/cli-busybox:1" "oci:$work/pulled:1"
  check_fails_after "skopeo inspect (the manifest by tag)" "an anonymous pull of a private repository is refused" \
    sk inspect --tls-verify=false --no-creds "docker://$repo/cli-busybox:1"
  check_fails_after "skopeo copy (push) to the registry" "a wrong password is refused" \
    sk inspect --tls-verify=false --creds "$ADMIN_USER:wrong-password" "docker://$repo/cli-busybox:1"
  # podman, rootful, with storage and credentials of its own under the cloud's temp dir (its run root
  # must be a short path: podman refuses one longer than 50 characters)
  podrun=$(mktemp -d /tmp/podrun.XXXXXX)
  at_exit "rm -rf '$podrun'"
  pod() {
    env PATH="$DEBIAN_PATH" podman --root "$work/podman/root" --runroot "$podrun" --storage-driver vfs \
      --cgroup-manager cgroupfs --events-backend file "$@"
  }
  check "podman login (Keystone credentials)" pod login --tls-verify=false --authfile "$work/podman-auth.json" -u "$ADMIN_USER" -p "$ADMIN_PASSWORD" "$registry"
  check "podman pull" pod pull --tls-verify=false --authfile "$work/podman-auth.json" "$repo/cli-busybox:1"
  check "podman tag" pod tag "$repo/cli-busybox:1" "$repo/cli-podman:1"
  check "podman push" pod push --tls-verify=false --authfile "$work/podman-auth.json" "$repo/cli-podman:1"
  check_has "skopeo inspect of what podman pushed" '"Digest": "sha256:' -- sk inspect --tls-verify=false --creds "$creds" "docker://$repo/cli-podman:1"
  pod rmi -a -f >/dev/null 2>&1
  # the tag podman pushed as a bootable image (the registry's Glance image <project>/<name>:<tag>)
  if [ -n "${passed_check[podman push]:-}" ]; then
    check "the image podman pushed is in Glance as $ADMIN_PROJECT/cli-podman:1" \
      wait_for 60 active os image show "$ADMIN_PROJECT/cli-podman:1" -f value -c status
    check_has "server create --image $ADMIN_PROJECT/cli-podman:1 --wait" ACTIVE -- \
      os server create --image "$ADMIN_PROJECT/cli-podman:1" --flavor c1.container --wait cli-regserver -f value -c status
    check "server delete --wait (the registry's image)" os server delete --wait cli-regserver
  else
    not_ok "a server from the image podman pushed" "cannot tell: 'podman push' did not pass"
  fi
else
  skip "registry flows (skopeo, podman, a server from a pushed image)" "$no_registry"
fi

# --- durability: a server killed with -9 in the middle of uploads loses nothing it acknowledged.
# A `stratus server` of its own (no agent) on a data dir of its own, started twice.
if [ -n "$account_url" ]; then
  dur=$work/durability
  dur_port=$(free_port)
  dur_pw=dur-$RANDOM$RANDOM
  dur_server() {
    "${STRATUS_BIN:-$STRATUS_ROOT/bin/stratus}" server --data-dir "$dur" --port "$dur_port" --admin-password "$dur_pw" --log-level warn \
      </dev/null >>"$work/durability-server.log" 2>&1 &
    dur_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
      [ "$(code "http://127.0.0.1:$dur_port/healthz")" = 200 ] && return 0
      kill -0 "$dur_pid" 2>/dev/null || { echo "the server exited"; tail -n 20 "$work/durability-server.log"; return 1; }
      sleep 0.2
    done
    echo "the server did not answer /healthz in 60 s"; return 1
  }
  at_exit '[ -n "${dur_pid:-}" ] && kill -KILL "$dur_pid" 2>/dev/null'
  # dur_login: the admin's token and object-store URL (two lines)
  dur_login() {
    curl -s -m 20 -D - -o "$work/dur-token.json" -H 'Content-Type: application/json' \
      -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$dur_pw\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
      "http://127.0.0.1:$dur_port/identity/v3/auth/tokens" | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *\([^[:space:]]*\).*/\1/p'
    dpython -c 'import json,sys; print(next(e["url"] for s in json.load(open(sys.argv[1]))["token"]["catalog"] if s["type"] == "object-store" for e in s["endpoints"] if e["interface"] == "public"))' "$work/dur-token.json"
  }
  # started here, not in check's subshell: dur_pid must stay this shell's
  dur_check_start() {
    if dur_server >"$work/dur-start.out" 2>&1; then ok "$1"; return 0; fi
    not_ok "$1" "$(cat "$work/dur-start.out")"; return 1
  }
  if dur_check_start "durability: start a server"; then
    { read -r dur_token; read -r dur_url; } < <(dur_login)
    : >"$work/acked.txt"
    env PATH="$DEBIAN_PATH" python3 "$STRATUS_ROOT/conformance/object_durability.py" upload "$dur_url" "$dur_token" "$work/acked.txt" 8 \
      >"$work/durability-upload.log" 2>&1 &
    uploader=$!
    # let it acknowledge some, then kill -9 the server while uploads are in flight
    for ((i = 0; i < 100; i++)); do [ "$(wc -l <"$work/acked.txt")" -ge 30 ] && break; sleep 0.1; done
    sleep 0.3
    kill -KILL "$dur_pid"; wait "$dur_pid" 2>/dev/null
    wait "$uploader" 2>/dev/null
    check_has "durability: objects were acknowledged before the kill" acked -- sh -c "[ -s '$work/acked.txt' ] && echo \$(wc -l <'$work/acked.txt') acked"
    if dur_check_start "durability: the server starts again on the same data dir"; then
      { read -r dur_token; read -r dur_url; } < <(dur_login)
      check_has "durability: every acknowledged object is whole after the restart" " 0 missing, 0 damaged" -- \
        env PATH="$DEBIAN_PATH" python3 "$STRATUS_ROOT/conformance/object_durability.py" verify "$dur_url" "$dur_token" "$work/acked.txt"
      kill -TERM "$dur_pid"; wait "$dur_pid" 2>/dev/null
      if "${STRATUS_BIN:-$STRATUS_ROOT/bin/stratus}" object audit --help >/dev/null 2>&1; then
        check "durability: stratus object audit finds no orphan and no damage" \
          "${STRATUS_BIN:-$STRATUS_ROOT/bin/stratus}" object audit --data-dir "$dur"
      else
        skip "durability: stratus object audit" "no \`stratus object audit\` in this build"
      fi
    fi
  fi
else
  skip "durability (kill -9 mid-upload)" "$no_swift"
fi

checks_summary
