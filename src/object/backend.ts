// The object store's bytes: an ObjectBackend keeps blobs, each an immutable
// run of bytes named by an id the store chooses (and records in the database
// before the blob is written: see store.ts). Objects are made of one or more
// blobs; the records (names, metadata, which blobs make an object) are the
// store's, never the backend's.
//
// The embedded backend is file-backend.ts (files under DATA_DIR/objects). A
// network backend (Ceph RADOS Gateway, any S3 endpoint) implements the same
// interface: write is one PUT of a new key, read a ranged GET, remove a DELETE,
// list a bucket listing.
import type { Readable } from 'node:stream';

export interface BlobWritten {
  /** Bytes written. */
  size: number;
  /** MD5 of the bytes, lowercase hex (Swift's ETag, S3's single-part ETag). */
  md5: string;
}

export interface BlobWriteOptions {
  /**
   * The bytes the caller declared (Content-Length): fewer is ShortBodyError,
   * more is TooLargeError; nothing is kept either way.
   */
  expectedSize?: number;
  /** The most bytes accepted (5 GiB for Swift); beyond it TooLargeError, nothing kept. */
  maxSize: number;
}

/** A part of a blob: bytes [start, end) (end exclusive). */
export interface ByteRange { start: number; end: number }

export interface ObjectBackend {
  /**
   * Writes `source` into the new blob `id`, durably (fsynced, its name too)
   * before it resolves. All or nothing: on a stream error, a short or long
   * body, nothing named `id` remains (a crash is the store's pending row's
   * business: it removes the blob at the next start).
   */
  write(id: string, source: Readable | AsyncIterable<Buffer | Uint8Array>, o: BlobWriteOptions): Promise<BlobWritten>;
  /**
   * Optional: makes blobs `ids` ready ahead of their write(), durably (for
   * files: empty files created and their directory fsynced, handles kept
   * open for synchronous writes), so a small write of one of them is one
   * system call: its bytes, durable when it returns.
   * The store names them in pending rows first and passes each id to one
   * write() or to remove(); what is ready holds no object's bytes, and a
   * crash leaves it to the store's pending rows.
   */
  reserve?(ids: readonly string[]): Promise<void>;
  /** The largest declared size a reserved blob is for (larger or undeclared writes take a new id). */
  readonly reserveUpTo?: number;
  /**
   * The bytes of blob `id` (of `size` bytes, as recorded), optionally only
   * `range`, each byte checked against the blob's checksums as it is read: a
   * mismatch or a missing blob makes the stream error with BlobCorruptError
   * (logged by the store as bit rot).
   */
  read(id: string, size: number, range?: ByteRange): Readable;
  /** The same bytes as read(), at once (for small objects: no stream). */
  readSmall?(id: string, size: number, range?: ByteRange): Promise<Buffer>;
  /** Removes blobs; ids already absent are not an error. */
  remove(ids: readonly string[]): Promise<void>;
  /** Every blob id the backend holds (the audit's orphan check); leftovers of interrupted writes included. */
  list(): AsyncIterable<string>;
  /** Reads a whole blob checking its checksums; its MD5 when whole, else why not. */
  verify(id: string, size: number): Promise<{ ok: true; md5: string } | { ok: false; reason: string }>;
  /** Removes what interrupted writes left that no record names (temporary files). */
  recover(): Promise<void>;
}

/** The body ended before the length the client declared (Swift: 499, nothing stored). */
export class ShortBodyError extends Error {
  readonly got: number;
  readonly expected: number;
  constructor(got: number, expected: number) {
    super(`the body ended after ${got} of ${expected} bytes`);
    this.got = got;
    this.expected = expected;
  }
}

/** More bytes than declared or allowed (Swift: 413). */
export class TooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`the body exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

/** A blob whose bytes no longer match their checksums, or that is missing: bit rot. */
export class BlobCorruptError extends Error {
  readonly blobId: string;
  constructor(blobId: string, reason: string) {
    super(`blob ${blobId}: ${reason}`);
    this.blobId = blobId;
  }
}
