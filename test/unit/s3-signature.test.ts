// AWS's published Signature Version 4 examples for S3 (the S3 API reference's
// "Signature Calculations for the Authorization Header", "Query String
// Authentication" and "Transferring Payload in Multiple Chunks") and its
// Version 2 example, checked against sigv4.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalRequest, chunkStringToSign, EMPTY_SHA256, headerLines, parseV4Authorization, sha256Hex, signingKey, signV2, signV4,
  stringToSign, trailerStringToSign, uriEncode, v2StringToSign, type Scope,
} from '../../src/object/s3/sigv4.ts';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const scope: Scope = { date: '20130524', region: 'us-east-1', service: 's3' };
const DATE = '20130524T000000Z';
const raw = (h: Record<string, string>) => headerLines(Object.entries(h).flat());

function sign(method: string, path: string, query: string, headers: Record<string, string>, payloadHash: string, omitQuery?: string): string {
  const h = raw(headers);
  const signed = [...h.keys()].sort();
  const canonical = canonicalRequest({ method, path, rawQuery: query, headers: h, signedHeaders: signed, payloadHash, omitQuery });
  return signV4(signingKey(SECRET, scope), stringToSign(DATE, scope, canonical));
}

test('GET object with a range (AWS example)', () => {
  const sig = sign('GET', '/test.txt', '', { Host: 'examplebucket.s3.amazonaws.com', Range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': DATE }, EMPTY_SHA256);
  assert.equal(sig, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
});

test('PUT object (AWS example)', () => {
  const body = 'Welcome to Amazon S3.';
  const hash = sha256Hex(body);
  assert.equal(hash, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
  const sig = sign('PUT', '/test%24file.text', '', {
    Date: 'Fri, 24 May 2013 00:00:00 GMT', Host: 'examplebucket.s3.amazonaws.com', 'x-amz-date': DATE,
    'x-amz-storage-class': 'REDUCED_REDUNDANCY', 'x-amz-content-sha256': hash,
  }, hash);
  assert.equal(sig, '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
});

test('GET bucket lifecycle and list objects (AWS examples: sub-resource and sorted query)', () => {
  const h = { Host: 'examplebucket.s3.amazonaws.com', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': DATE };
  assert.equal(sign('GET', '/', 'lifecycle', h, EMPTY_SHA256), 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
  assert.equal(sign('GET', '/', 'prefix=J&max-keys=2', h, EMPTY_SHA256), '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
});

test('presigned GET (AWS example)', () => {
  const query = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=ignored';
  const sig = sign('GET', '/test.txt', query, { Host: 'examplebucket.s3.amazonaws.com' }, 'UNSIGNED-PAYLOAD', 'X-Amz-Signature');
  assert.equal(sig, 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
});

test('chunked upload: seed and chunk signatures (AWS example)', () => {
  const seed = sign('PUT', '/examplebucket/chunkObject.txt', '', {
    Host: 's3.amazonaws.com', 'x-amz-date': DATE, 'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'Content-Encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560', 'Content-Length': '66824',
  }, 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
  assert.equal(seed, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  const key = signingKey(SECRET, scope);
  const c1 = signV4(key, chunkStringToSign(DATE, scope, seed, sha256Hex(Buffer.alloc(65536, 'a'))));
  assert.equal(c1, 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648');
  const c2 = signV4(key, chunkStringToSign(DATE, scope, c1, sha256Hex(Buffer.alloc(1024, 'a'))));
  assert.equal(c2, '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497');
  const last = signV4(key, chunkStringToSign(DATE, scope, c2, EMPTY_SHA256));
  assert.equal(last, 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9');
});

test('the Authorization header is parsed; malformed ones are refused', () => {
  const a = parseV4Authorization('AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=abc');
  assert.deepEqual(a, { access: 'AKIAIOSFODNN7EXAMPLE', scope, signedHeaders: ['host', 'range', 'x-amz-date'], signature: 'abc' });
  assert.equal(parseV4Authorization('AWS4-HMAC-SHA256 Credential=AK/2013/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc'), null);
  assert.equal(parseV4Authorization('AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc'), null);
});

test('UriEncode as AWS documents it', () => {
  assert.equal(uriEncode('a b/c~d*e+é'), 'a%20b%2Fc~d%2Ae%2B%C3%A9');
  assert.equal(uriEncode('a b/c', true), 'a%20b/c');
});

test('Signature Version 2 (AWS examples)', () => {
  const get = v2StringToSign({ method: 'GET', resourcePath: '/awsexamplebucket1/photos/puppy.jpg', rawQuery: '', headers: raw({ Host: 'awsexamplebucket1.us-west-1.s3.amazonaws.com' }), date: 'Tue, 27 Mar 2007 19:36:42 +0000' });
  assert.equal(get, 'GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg');
  assert.equal(signV2(SECRET, get), 'qgk2+6Sv9/oM7G3qLEjTH1a1l1g=');
  const acl = v2StringToSign({ method: 'GET', resourcePath: '/awsexamplebucket1/', rawQuery: 'acl', headers: raw({}), date: 'Tue, 27 Mar 2007 19:44:46 +0000' });
  assert.equal(acl, 'GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/awsexamplebucket1/?acl');
});

test('canonical query: values decoded then encoded again, sorted by name then value, empty values kept', async () => {
  const { canonicalQuery } = await import('../../src/object/s3/sigv4.ts');
  assert.equal(canonicalQuery('b=2&a=2&a=1&uploads&x=a%20b+c&y=%7e~'), 'a=1&a=2&b=2&uploads=&x=a%20b%20c&y=~~');
  assert.equal(canonicalQuery('X-Amz-Signature=abc&k=v', 'X-Amz-Signature'), 'k=v');
  assert.equal(canonicalQuery('prefix=photos/2006/'), 'prefix=photos%2F2006%2F');
});

test('canonical headers: values trimmed, inner spaces folded, repeated headers joined by commas', () => {
  const h = headerLines(['X-Amz-Meta-A', '  two   words ', 'x-amz-meta-a', 'second', 'Host', 'h']);
  const c = canonicalRequest({ method: 'GET', path: '/', rawQuery: '', headers: h, signedHeaders: ['host', 'x-amz-meta-a'], payloadHash: 'UNSIGNED-PAYLOAD' });
  assert.equal(c, 'GET\n/\n\nhost:h\nx-amz-meta-a:two words,second\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD');
});

test('the aws-chunked decoder: any split of the bytes, chunk signatures, a trailer; tampering and truncation refused', async () => {
  const { checkedBody } = await import('../../src/object/s3/payload.ts');
  const { Readable } = await import('node:stream');
  const { createHash } = await import('node:crypto');
  const key = signingKey(SECRET, scope);
  const seed = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
  const data = Buffer.from('x'.repeat(70000));
  const pieces = [data.subarray(0, 65536), data.subarray(65536), Buffer.alloc(0)];
  let prev = seed;
  const encoded = Buffer.concat(pieces.flatMap((p) => {
    const sig = signV4(key, chunkStringToSign(DATE, scope, prev, createHash('sha256').update(p).digest('hex')));
    prev = sig;
    return [Buffer.from(`${p.length.toString(16)};chunk-signature=${sig}\r\n`), p, Buffer.from('\r\n')];
  }));
  const check = { chunked: { signed: true, trailer: false, key, scope, amzDate: DATE, seed, decodedLength: data.length } };
  const read = async (bytes: Buffer, step: number) => {
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += step) parts.push(bytes.subarray(i, i + step));
    const out: Buffer[] = [];
    for await (const c of checkedBody(Readable.from(parts), check)) out.push(c as Buffer);
    return Buffer.concat(out);
  };
  for (const step of [1, 7, 4096, encoded.length]) assert.ok((await read(encoded, step)).equals(data), `split every ${step} bytes`);
  const tampered = Buffer.from(encoded);
  tampered[200] = 0x79;
  await assert.rejects(read(tampered, 1000), (e: any) => e.s3Code === 'SignatureDoesNotMatch');
  await assert.rejects(read(encoded.subarray(0, encoded.length - 100), 1000), (e: any) => e.s3Code === 'IncompleteBody' || e.s3Code === 'SignatureDoesNotMatch');
  await assert.rejects(read(Buffer.from('zz;chunk-signature=00\r\n'), 1000), (e: any) => e.s3Code === 'InvalidRequest');
  // a signed upload announcing a trailer: the trailer is signed after the last chunk, and read as signed
  const trailer = 'x-amz-checksum-crc32:AAAAAA==';
  const trailerSig = signV4(key, trailerStringToSign(DATE, scope, prev, createHash('sha256').update(`${trailer}\n`).digest('hex')));
  const chunks = encoded.subarray(0, encoded.length - 2);
  const withTrailer = { chunked: { ...check.chunked, trailer: true } };
  const readT = async (bytes: Buffer) => {
    const out: Buffer[] = [];
    for await (const c of checkedBody(Readable.from([bytes]), withTrailer)) out.push(c as Buffer);
    return Buffer.concat(out);
  };
  assert.ok((await readT(Buffer.concat([chunks, Buffer.from(`${trailer}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`)]))).equals(data));
  await assert.rejects(readT(Buffer.concat([chunks, Buffer.from(`${trailer}\r\n\r\n`)])), (e: any) => e.s3Code === 'SignatureDoesNotMatch', 'the trailer signature left out');
  await assert.rejects(readT(Buffer.concat([chunks, Buffer.from(`${trailer}\r\nx-amz-trailer-signature:${trailerSig}\r\nx-amz-meta-late:1\r\n\r\n`)])),
    (e: any) => e.s3Code === 'InvalidRequest', 'a line after the trailer signature');
});
