// boto3 (Debian's python3-boto3, or any installed one) against the in-process
// server: what a real SDK sends (flexible checksums, aws-chunked with
// trailers, multipart transfers, presigned URLs, SigV2) must work unchanged.
// Skipped when boto3 is not installed; conformance/ runs the full client flows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { tenant, useCloud } from '../../harness.ts';
import { ec2Keys } from './s3-lib.ts';

const hasBoto3 = spawnSync('python3', ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0;
const cloud = useCloud();

test('boto3 flows: buckets, objects, streamed and multipart uploads, presigned URLs, versions, ACLs, SigV2', { skip: !hasBoto3 && 'python3 boto3 is not installed' }, async () => {
  const keys = await ec2Keys(cloud, await tenant(cloud));
  const script = join(import.meta.dirname, 'fixtures', 's3-boto3.py');
  const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const p = spawn('python3', [script, cloud.url, keys.access, keys.secret], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => { text += d; });
    p.stderr.on('data', (d) => { text += d; });
    p.on('close', (code) => resolve({ code, text }));
  });
  assert.equal(out.code, 0, out.text);
  assert.match(out.text, /boto3 flow ok/);
});
