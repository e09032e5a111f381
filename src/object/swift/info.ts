// Swift's /info (discoverability): what this object service is and does,
// in Swift's shape: a `swift` section with the constraints in force, then
// one section per middleware feature that is on, each saying its own limits
// (as each Swift middleware's register_swift_info). Served at `/object/info`,
// where clients look for it (Tempest and python-swiftclient strip the
// endpoint path from `/v1` on and ask `<that>/info`). Every section here is
// a feature Stratus serves; nothing is listed that is not.
import { PUBLIC } from '../../http/policy.ts';
import type { Route } from '../../http/service.ts';
import {
  LISTING_LIMIT, MAX_ACCOUNT_NAME_LENGTH, MAX_CONTAINER_NAME_LENGTH, MAX_FILE_SIZE, MAX_META_COUNT, MAX_META_NAME_LENGTH, MAX_META_OVERALL_SIZE,
  MAX_META_VALUE_LENGTH, MAX_OBJECT_NAME_LENGTH,
} from './headers.ts';
import { tempurlInfo } from './tempurl.ts';
import { formpostInfo } from './formpost.ts';
import { symlinkInfo } from './symlink-meta.ts';

// Node's HTTP header limit, read from the module object: a named import of node:http builds
// its namespace, whose lazy getters (WebSocket...) load undici and TLS at start.
const { maxHeaderSize } = process.getBuiltinModule('node:http');

/**
 * The version Stratus answers as: the Swift release whose API it follows
 * (clients gate features on it, e.g. account object-count quotas from 2.34).
 */
export const SWIFT_VERSION = '2.38.1';

/** Swift's constraints (swift/common/constraints.py defaults), the ones Stratus enforces. */
export interface SwiftConstraints {
  max_file_size: number;
  max_meta_name_length: number;
  max_meta_value_length: number;
  max_meta_count: number;
  max_meta_overall_size: number;
  max_header_size: number;
  max_request_line: number;
  max_object_name_length: number;
  container_listing_limit: number;
  account_listing_limit: number;
  max_account_name_length: number;
  max_container_name_length: number;
  valid_api_versions: string[];
  extra_header_count: number;
  auto_create_account_prefix: string;
}

/** The constraints in force: the core's (headers.ts) and Node's header limit (one for the request line and all headers). */
export const DEFAULT_CONSTRAINTS: SwiftConstraints = {
  max_file_size: MAX_FILE_SIZE,
  max_meta_name_length: MAX_META_NAME_LENGTH,
  max_meta_value_length: MAX_META_VALUE_LENGTH,
  max_meta_count: MAX_META_COUNT,
  max_meta_overall_size: MAX_META_OVERALL_SIZE,
  max_header_size: maxHeaderSize,
  max_request_line: maxHeaderSize,
  max_object_name_length: MAX_OBJECT_NAME_LENGTH,
  container_listing_limit: LISTING_LIMIT,
  account_listing_limit: LISTING_LIMIT,
  max_account_name_length: MAX_ACCOUNT_NAME_LENGTH,
  max_container_name_length: MAX_CONTAINER_NAME_LENGTH,
  valid_api_versions: ['v1', 'v1.0'],
  extra_header_count: 0,
  auto_create_account_prefix: '.',
};

/** SLO's limits (Swift's slo defaults). */
export const SLO_LIMITS = {
  max_manifest_segments: 1000,
  max_manifest_size: 8 * 1024 * 1024,
  /** Seconds between the spaces of a manifest PUT with heartbeat=on. */
  yield_frequency: 10,
  min_segment_size: 1,
  allow_async_delete: false,
} as const;

/** Bulk's limits (Swift's bulk defaults). */
export const BULK_LIMITS = {
  max_containers_per_extraction: 10000,
  max_failed_extractions: 1000,
  max_deletes_per_request: 10000,
  max_failed_deletes: 1000,
} as const;

/** The one storage policy: every container is in it. */
export const POLICIES = [{ name: 'Policy-0', aliases: 'Policy-0', default: true }];

/** The sections Stratus's Swift API serves, in the shape of Swift's GET /info. */
export function swiftInfo(constraints: SwiftConstraints = DEFAULT_CONSTRAINTS): Record<string, unknown> {
  return {
    swift: {
      version: SWIFT_VERSION,
      strict_cors_mode: true,
      policies: POLICIES,
      allow_account_management: false,
      account_autocreate: true,
      allow_open_expired: false,
      ...constraints,
    },
    tempurl: tempurlInfo(),
    formpost: formpostInfo(),
    slo: { ...SLO_LIMITS },
    bulk_upload: { max_containers_per_extraction: BULK_LIMITS.max_containers_per_extraction, max_failed_extractions: BULK_LIMITS.max_failed_extractions },
    bulk_delete: { max_deletes_per_request: BULK_LIMITS.max_deletes_per_request, max_failed_deletes: BULK_LIMITS.max_failed_deletes },
    versioned_writes: { allowed_flags: ['x-versions-location', 'x-history-location'] },
    object_versioning: {},
    container_quotas: {},
    account_quotas: {},
    staticweb: {},
    symlink: symlinkInfo(),
    crossdomain: {},
  };
}

/** Adobe's cross-domain policy, as Swift's crossdomain middleware serves it by default at /crossdomain.xml. */
export const CROSSDOMAIN_XML = '<?xml version="1.0"?>\n'
  + '<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >\n'
  + '<cross-domain-policy>\n'
  + '<allow-access-from domain="*" secure="false" />\n'
  + '</cross-domain-policy>';

// ---- the routes: /object/info, /object/crossdomain.xml, /object/healthcheck (public, as Swift serves them)

export function infoRoutes(): Route[] {
  return [
    {
      method: ['GET', 'HEAD'], path: '/info', rule: PUBLIC,
      handler: (rc) => {
        const origin = rc.req.headers.origin;
        if (origin) rc.reply.header('Access-Control-Allow-Origin', origin).header('Access-Control-Expose-Headers', 'x-trans-id');
        rc.reply.header('Content-Type', 'application/json; charset=UTF-8');
        return JSON.stringify(swiftInfo());
      },
    },
    {
      method: 'OPTIONS', path: '/info', rule: PUBLIC,
      handler: (rc) => {
        rc.reply.header('Allow', 'HEAD, GET, OPTIONS').header('Content-Type', 'text/html; charset=UTF-8');
        return '';
      },
    },
    {
      method: ['GET', 'HEAD'], path: '/crossdomain.xml', rule: PUBLIC,
      handler: (rc) => {
        rc.reply.header('Content-Type', 'application/xml; charset=utf-8');
        return CROSSDOMAIN_XML;
      },
    },
    {
      method: ['GET', 'HEAD'], path: '/healthcheck', rule: PUBLIC,
      handler: (rc) => {
        rc.reply.header('Content-Type', 'text/plain');
        return 'OK';
      },
    },
  ];
}
