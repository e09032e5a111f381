// XML for the S3 API: request bodies (CompleteMultipartUpload, Delete,
// VersioningConfiguration, AccessControlPolicy, CreateBucketConfiguration)
// are parsed by fast-xml-parser, never by hand; responses are written by the
// small builder below, which escapes every text it is given.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { escapeXml } from '../../common/text.ts';
import { s3Error } from './errors.ts';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** A repeated element: each item written as an element of the same name. */
export class Many {
  readonly items: readonly XmlValue[];
  constructor(items: readonly XmlValue[]) {
    this.items = items;
  }
}
export type XmlValue = string | number | boolean | null | undefined | XmlNode | Many;
/** An element's children in order: [name, value]; null/undefined is left out. */
export type XmlNode = ReadonlyArray<readonly [string, XmlValue]>;

function write(name: string, v: XmlValue): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Many) return v.items.map((x) => write(name, x)).join('');
  if (Array.isArray(v)) return `<${name}>${(v as XmlNode).map(([n, x]) => write(n, x)).join('')}</${name}>`;
  return `<${name}>${escapeXml(String(v))}</${name}>`;
}

/** A whole document: `<?xml ...?><Root xmlns="...">children</Root>`. */
export function xmlDocument(root: string, children: XmlNode, ns: string | null = S3_NS): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns ? ` xmlns="${ns}"` : ''}>${children.map(([n, v]) => write(n, v)).join('')}</${root}>`;
}

/** A repeated element. */
export const many = (items: readonly XmlValue[]): Many => new Many(items);

/** Elements that may repeat: always parsed as arrays. */
const ARRAYS = new Set(['Part', 'Object', 'Grant', 'Tag', 'CORSRule', 'AllowedOrigin', 'AllowedMethod', 'AllowedHeader', 'ExposeHeader', 'Rule']);

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => ARRAYS.has(name),
});

/** A request body's XML as plain objects (elements by name; those in ARRAYS always arrays); MalformedXML when it is not well-formed. */
export function parseXml(text: string, code: 'MalformedXML' | 'MalformedACLError' = 'MalformedXML'): Record<string, unknown> {
  if (text.trim() === '' || XMLValidator.validate(text) !== true) throw s3Error(code);
  try {
    const doc = parser.parse(text) as unknown;
    if (!doc || typeof doc !== 'object') throw new Error('empty');
    return doc as Record<string, unknown>;
  } catch {
    throw s3Error(code);
  }
}

/** An element's text, or undefined when absent or not text. */
export const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
/** An element's children as an object; undefined otherwise. */
export const node = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : v === '' ? {} : undefined);
