// boto3 (Debian's python3-boto3, or any installed one) against the in-process
// server: what a real SDK sends (flexible checksums, aws-chunked with
// trailers, multipart transfers, presigned URLs, SigV2) must work unchanged.
// Skipped when boto3 is not installed; conformance/ runs the full client flows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, tenant, useCloud, type Cloud } from '../../harness.ts';
import { ec2Keys } from './s3-lib.ts';

const hasBoto3 = spawnSync('python3', ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0;
const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const cloud = useCloud();

async function runFlow(c: Cloud): Promise<void> {
  const keys = await ec2Keys(c, await tenant(c));
  const script = join(import.meta.dirname, 'fixtures', 's3-boto3.py');
  const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const p = spawn('python3', [script, c.url, keys.access, keys.secret], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => { text += d; });
    p.stderr.on('data', (d) => { text += d; });
    p.on('close', (code) => resolve({ code, text }));
  });
  assert.equal(out.code, 0, out.text);
  assert.match(out.text, /boto3 flow ok/);
}

test('boto3 flows: buckets, objects, streamed and multipart uploads, presigned URLs, versions, ACLs, SigV2', { skip: !hasBoto3 && 'python3 boto3 is not installed' }, async () => {
  await runFlow(cloud);
});

test('boto3 over HTTPS: uploads streamed aws-chunked with a trailing checksum', { skip: (!hasBoto3 && 'python3 boto3 is not installed') || (!hasOpenssl && 'openssl is not installed') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-s3-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  assert.equal(made.status, 0);
  // the harness's own calls to the server trust its self-signed certificate
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  let tls: Cloud | undefined;
  try {
    tls = await startCloud({ tls: { certFile: cert, keyFile: key } });
    assert.match(tls.url, /^https:/);
    await runFlow(tls);
  } finally {
    await tls?.close();
    delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    rmSync(dir, { recursive: true, force: true });
  }
});
