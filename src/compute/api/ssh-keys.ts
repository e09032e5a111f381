// Key pair material: parsing and fingerprinting OpenSSH public keys and X.509
// certificates, and generating new key pairs (RSA for ssh, a self-signed
// certificate for x509), as Nova does below microversion 2.92.
import { createHash, createPublicKey, generateKeyPair, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

const colonHex = (buf: Buffer): string => buf.toString('hex').match(/../g)!.join(':');

/** Reads one SSH wire-format string (uint32 length + bytes). */
function readString(buf: Buffer, off: number): [Buffer, number] {
  if (off + 4 > buf.length) throw new Error('truncated');
  const n = buf.readUInt32BE(off);
  if (off + 4 + n > buf.length) throw new Error('truncated');
  return [buf.subarray(off + 4, off + 4 + n), off + 4 + n];
}

const SSH_TYPES = ['ssh-rsa', 'ssh-ed25519', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'];

/**
 * Validates an OpenSSH public key line ("type base64 [comment]") and returns
 * its MD5 fingerprint as Nova shows it; null when it is not a valid key.
 */
export function sshFingerprint(line: string): string | null {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !SSH_TYPES.includes(parts[0]!)) return null;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]!)) return null;
  const blob = Buffer.from(parts[1]!, 'base64');
  try {
    let [type, off] = readString(blob, 0);
    if (type.toString() !== parts[0]) return null;
    if (parts[0] === 'ssh-rsa') {
      let e: Buffer;
      let n: Buffer;
      [e, off] = readString(blob, off);
      [n, off] = readString(blob, off);
      const strip = (b: Buffer) => { let i = 0; while (i < b.length - 1 && b[i] === 0) i++; return b.subarray(i); };
      const bits = strip(n).length * 8;
      if (bits < 768 || bits > 16384) return null;
      createPublicKey({ key: { kty: 'RSA', n: strip(n).toString('base64url'), e: strip(e).toString('base64url') }, format: 'jwk' });
    } else if (parts[0] === 'ssh-ed25519') {
      let k: Buffer;
      [k, off] = readString(blob, off);
      if (k.length !== 32) return null;
    } else if (parts[0].startsWith('ecdsa-')) {
      let curve: Buffer;
      let point: Buffer;
      [curve, off] = readString(blob, off);
      [point, off] = readString(blob, off);
      if (!parts[0].endsWith(curve.toString()) || point.length < 33 || point[0] !== 4) return null;
    } else if (parts[0] === 'ssh-dss') {
      for (let i = 0; i < 4; i++) [, off] = readString(blob, off);
    } else {
      while (off < blob.length) [, off] = readString(blob, off);
    }
    if (off !== blob.length) return null;
  } catch {
    return null;
  }
  return colonHex(createHash('md5').update(blob).digest());
}

/** Validates a PEM X.509 certificate and returns its SHA-1 fingerprint; null when invalid. */
export function x509Fingerprint(pem: string): string | null {
  try {
    const cert = new X509Certificate(pem);
    return colonHex(createHash('sha1').update(cert.raw).digest());
  } catch {
    return null;
  }
}

/** A new RSA key: the private key (PEM), the OpenSSH public key line and its fingerprint. */
export async function generateSshKey(comment = 'Generated-by-Nova'): Promise<{ privateKey: string; publicKey: string; fingerprint: string }> {
  const { publicKey, privateKey } = await generate('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const jwk = (publicKey as KeyObject).export({ format: 'jwk' }) as { n: string; e: string };
  const mpint = (b64: string) => {
    const raw = Buffer.from(b64, 'base64url');
    return raw[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), raw]) : raw;
  };
  const str = (b: Buffer) => { const len = Buffer.alloc(4); len.writeUInt32BE(b.length); return Buffer.concat([len, b]); };
  const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(jwk.e)), str(mpint(jwk.n))]);
  return {
    privateKey: (privateKey as KeyObject).export({ type: 'pkcs1', format: 'pem' }) as string,
    publicKey: `ssh-rsa ${blob.toString('base64')} ${comment}`,
    fingerprint: colonHex(createHash('md5').update(blob).digest()),
  };
}

// ---- a minimal DER writer, enough for one self-signed certificate

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) { bytes.unshift(n & 0xff); n >>= 8; }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const der = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    let v = p >> 7;
    while (v > 0) { stack.unshift((v & 0x7f) | 0x80); v >>= 7; }
    out.push(...stack);
  }
  return der(0x06, Buffer.from(out));
}
function int(buf: Buffer): Buffer {
  return der(0x02, buf[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), buf]) : buf);
}
function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return der(0x17, Buffer.from(s, 'ascii'));
}
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn, 'utf8')))));

/** A new self-signed certificate for `subject` (Nova's x509 key pairs): key PEM, certificate PEM, fingerprint. */
export async function generateX509(subject: string): Promise<{ privateKey: string; certificate: string; fingerprint: string }> {
  const { publicKey, privateKey } = await generate('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const sigAlg = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const now = new Date();
  const serial = createHash('sha1').update(`${subject}${now.getTime()}${Math.random()}`).digest().subarray(0, 16);
  serial[0]! &= 0x7f;
  const extKeyUsage = seq(oid('2.5.29.37'), der(0x04, seq(oid('1.3.6.1.5.5.7.3.2'))));
  const tbs = seq(
    der(0xa0, int(Buffer.from([2]))),
    int(serial),
    sigAlg,
    name(subject),
    seq(utcTime(new Date(now.getTime() - 60_000)), utcTime(new Date(now.getTime() + 10 * 365 * 86400_000))),
    name(subject),
    (publicKey as KeyObject).export({ type: 'spki', format: 'der' }) as Buffer,
    der(0xa3, seq(extKeyUsage)),
  );
  const signature = sign('sha256', tbs, privateKey as KeyObject);
  const cert = seq(tbs, sigAlg, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = cert.toString('base64').match(/.{1,64}/g)!.join('\n');
  return {
    privateKey: (privateKey as KeyObject).export({ type: 'pkcs8', format: 'pem' }) as string,
    certificate: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    fingerprint: colonHex(createHash('sha1').update(cert).digest()),
  };
}
