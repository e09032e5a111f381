// Which request paths the noVNC file route maps to a file of the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { novncFile } from '../../src/compute/api/novnc.ts';

const DIR = '/pkg/novnc';

test('novncFile: core/ and vendor/ files of known types, inside the package', () => {
  assert.equal(novncFile('core/rfb.js', DIR), '/pkg/novnc/core/rfb.js');
  assert.equal(novncFile('vendor/pako/lib/zlib/inflate.js', DIR), '/pkg/novnc/vendor/pako/lib/zlib/inflate.js');
  assert.equal(novncFile('core/util/%62rowser.js', DIR), '/pkg/novnc/core/util/browser.js');
});

test('novncFile: nothing else (dot segments, encoded or not, other folders and types, odd bytes)', () => {
  for (const p of [
    '', 'core', 'core/', 'package.json', 'docs/API.md', 'core/../package.json', 'core/%2e%2e/package.json', 'core/..%2fpackage.json',
    'core/%2E%2E%2F%2E%2E%2Fetc/passwd.js', 'vendor/./pako.js', 'core//rfb.js', '/etc/passwd', '%2fetc%2fpasswd.js', 'core/..\\..\\x.js',
    'core/rfb.js%00.js', 'core/rfb', 'core/rfb.ts', 'core/%E0%A4%A.js', '../core/rfb.js', 'core/rfb.js/',
  ]) assert.equal(novncFile(p, DIR), null, p);
});
