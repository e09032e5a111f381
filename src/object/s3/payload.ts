// The body of an S3 request as the object store reads it: the bytes the
// client meant, checked as they stream through, never held whole. An
// aws-chunked body (Content-Encoding: aws-chunked; x-amz-content-sha256
// STREAMING-...) is decoded chunk by chunk, each chunk's signature checked
// against the previous one (the seed is the request's signature), and its
// trailer (checksum and trailer signature) read at the end; a signed payload
// hash, Content-MD5 and x-amz-checksum-* are checked when the last byte has
// passed. Any failure errors the stream with the S3 error, so the store
// discards what it was writing and nothing is stored half-way.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { s3Error, type S3Error } from './errors.ts';
import { chunkStringToSign, EMPTY_SHA256, sameSignature, sha256Hex, signV4, trailerStringToSign, type Scope } from './sigv4.ts';

/** What the signature said about the body; auth.ts derives it from the request. */
export interface PayloadCheck {
  /** The body's SHA-256 (hex) the client signed; checked at the end. */
  sha256?: string;
  /** An aws-chunked body. */
  chunked?: {
    /** Each chunk carries a signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]). */
    signed: boolean;
    trailer: boolean;
    /** The signing material of the request (signed chunks only). */
    key?: Buffer;
    scope?: Scope;
    amzDate?: string;
    seed?: string;
    /** x-amz-decoded-content-length: the decoded body's length, when sent. */
    decodedLength?: number;
  };
  /** Content-MD5 as sent (base64). */
  md5?: string;
  /** x-amz-checksum-<algorithm> of the whole body (as a header, or announced in x-amz-trailer). */
  checksum?: { algorithm: string; value?: string };
}

const MAX_LINE = 4096;

class ChecksumState {
  private readonly hash: Hash | null;
  private crc = 0;
  private readonly algorithm: string;
  constructor(algorithm: string) {
    this.algorithm = algorithm;
    this.hash = algorithm === 'sha256' ? createHash('sha256') : algorithm === 'sha1' ? createHash('sha1') : null;
  }
  update(b: Buffer): void {
    if (this.hash) this.hash.update(b);
    else if (this.algorithm === 'crc32') this.crc = crc32(b, this.crc);
  }
  /** The checksum in base64, or null for an algorithm Node cannot compute (crc32c, crc64nvme: not checked). */
  digest(): string | null {
    if (this.hash) return this.hash.digest('base64');
    if (this.algorithm === 'crc32') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(this.crc >>> 0);
      return b.toString('base64');
    }
    return null;
  }
}

/**
 * The request body, decoded and checked; `length` is what the stream will
 * yield when complete (x-amz-decoded-content-length or Content-Length), if known.
 */
export function checkedBody(raw: Readable, check: PayloadCheck): Readable {
  const out = new PayloadStream(check);
  // A client that goes before the end of its body (now, or before this was called) ends the stream with
  // IncompleteBody, so the store's write fails (pipe alone would wait forever).
  // (The request's 'close' comes after its 'end' when the whole body was read.)
  const abandon = () => { if (!raw.readableEnded) out.destroy(s3Error('IncompleteBody')); };
  raw.on('error', abandon);
  raw.on('close', abandon);
  out.on('error', () => raw.resume());
  if (raw.destroyed) process.nextTick(abandon);
  return raw.pipe(out);
}

type State = 'header' | 'data' | 'data-crlf' | 'trailer' | 'done';

class PayloadStream extends Transform {
  private readonly check: PayloadCheck;
  private readonly sha256: Hash | null;
  private readonly md5: Hash | null;
  private readonly sum: ChecksumState | null;
  private state: State = 'header';
  private line = Buffer.alloc(0);
  private remaining = 0;
  private chunkHash: Hash | null = null;
  private chunkSignature = '';
  private previous: string;
  private decoded = 0;
  private readonly trailers = new Map<string, string>();
  private trailerText = '';
  /** A signed upload's trailer signature was read and matched (nothing may follow it). */
  private trailerSigned = false;

  constructor(check: PayloadCheck) {
    super();
    this.check = check;
    this.sha256 = check.sha256 && !check.chunked ? createHash('sha256') : null;
    this.md5 = check.md5 !== undefined ? createHash('md5') : null;
    this.sum = check.checksum ? new ChecksumState(check.checksum.algorithm) : null;
    this.previous = check.chunked?.seed ?? '';
    if (!check.chunked) this.state = 'data';
  }

  private emit_(b: Buffer): void {
    if (b.length === 0) return;
    this.sha256?.update(b);
    this.md5?.update(b);
    this.sum?.update(b);
    this.decoded += b.length;
    this.push(b);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.check.chunked) {
      this.emit_(chunk);
      return cb();
    }
    try {
      this.decode(chunk);
      cb();
    } catch (err) {
      cb(err as S3Error);
    }
  }

  /** Reads a CRLF-terminated line from `buf` at `i`; returns [line or null, next index]. */
  private readLine(buf: Buffer, i: number): [string | null, number] {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) {
      this.line = Buffer.concat([this.line, buf.subarray(i)]);
      if (this.line.length > MAX_LINE) throw s3Error('InvalidRequest', 'The aws-chunked encoding of the body is malformed.');
      return [null, buf.length];
    }
    const whole = Buffer.concat([this.line, buf.subarray(i, nl)]);
    this.line = Buffer.alloc(0);
    if (whole.length > MAX_LINE) throw s3Error('InvalidRequest', 'The aws-chunked encoding of the body is malformed.');
    const text = whole.toString('latin1');
    return [text.endsWith('\r') ? text.slice(0, -1) : text, nl + 1];
  }

  private decode(buf: Buffer): void {
    const c = this.check.chunked!;
    let i = 0;
    while (i < buf.length) {
      if (this.state === 'header') {
        const [line, next] = this.readLine(buf, i);
        i = next;
        if (line === null) return;
        const m = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(line);
        if (!m || (c.signed && !m[2])) throw s3Error('InvalidRequest', 'The aws-chunked encoding of the body is malformed.');
        this.remaining = parseInt(m[1]!, 16);
        this.chunkSignature = m[2] ?? '';
        this.chunkHash = c.signed ? createHash('sha256') : null;
        if (this.remaining === 0) {
          this.verifyChunk(EMPTY_SHA256);
          this.state = 'trailer';
        } else this.state = 'data';
      } else if (this.state === 'data') {
        const take = Math.min(this.remaining, buf.length - i);
        const part = buf.subarray(i, i + take);
        this.chunkHash?.update(part);
        this.emit_(part);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) {
          if (this.chunkHash) this.verifyChunk(this.chunkHash.digest('hex'));
          this.state = 'data-crlf';
        }
      } else if (this.state === 'data-crlf') {
        const [line, next] = this.readLine(buf, i);
        i = next;
        if (line === null) return;
        if (line !== '') throw s3Error('InvalidRequest', 'The aws-chunked encoding of the body is malformed.');
        this.state = 'header';
      } else if (this.state === 'trailer') {
        const [line, next] = this.readLine(buf, i);
        i = next;
        if (line === null) return;
        if (line === '') {
          this.state = 'done';
          continue;
        }
        const colon = line.indexOf(':');
        if (colon < 0) throw s3Error('InvalidRequest', 'The aws-chunked trailer is malformed.');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'x-amz-trailer-signature') this.verifyTrailer(value);
        else if (this.trailerSigned) throw s3Error('InvalidRequest', 'The aws-chunked trailer has lines after its signature.');
        else {
          this.trailers.set(name, value);
          this.trailerText += `${name}:${value}\n`;
        }
      } else {
        // Bytes after the end of the encoding: tolerated only as blank lines.
        if (buf.subarray(i).toString('latin1').trim() !== '') throw s3Error('InvalidRequest', 'The aws-chunked encoding of the body is malformed.');
        return;
      }
    }
  }

  private verifyChunk(hash: string): void {
    const c = this.check.chunked!;
    if (!c.signed) return;
    const expected = signV4(c.key!, chunkStringToSign(c.amzDate!, c.scope!, this.previous, hash));
    if (!sameSignature(expected, this.chunkSignature)) throw s3Error('SignatureDoesNotMatch');
    this.previous = this.chunkSignature;
  }

  private verifyTrailer(signature: string): void {
    const c = this.check.chunked!;
    if (!c.signed) return;
    const expected = signV4(c.key!, trailerStringToSign(c.amzDate!, c.scope!, this.previous, sha256Hex(this.trailerText)));
    if (!sameSignature(expected, signature)) throw s3Error('SignatureDoesNotMatch');
    this.trailerSigned = true;
  }

  override _flush(cb: TransformCallback): void {
    try {
      const c = this.check.chunked;
      if (c) {
        // The last chunk was read; the closing blank line is tolerated missing.
        if (this.state !== 'done' && !(this.state === 'trailer' && this.line.length === 0)) throw s3Error('IncompleteBody');
        if (c.decodedLength !== undefined && c.decodedLength !== this.decoded) throw s3Error('IncompleteBody');
        // a signed upload announcing a trailer signs it too: a trailer left unsigned is not taken on trust
        if (c.signed && c.trailer && !this.trailerSigned) throw s3Error('SignatureDoesNotMatch', 'The aws-chunked trailer carries no x-amz-trailer-signature.');
      }
      if (this.sha256 && this.sha256.digest('hex') !== this.check.sha256) throw s3Error('XAmzContentSHA256Mismatch');
      if (this.md5 && this.md5.digest('base64') !== this.check.md5) throw s3Error('BadDigest');
      if (this.sum) {
        const expected = this.check.checksum!.value ?? this.trailers.get(`x-amz-checksum-${this.check.checksum!.algorithm}`);
        const got = this.sum.digest();
        if (expected !== undefined && got !== null && got !== expected) {
          throw s3Error('BadDigest', `The ${this.check.checksum!.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
        }
      }
      cb();
    } catch (err) {
      cb(err as S3Error);
    }
  }
}
