// The per-kind descriptor (src/compute/kinds.ts): which kind an image needs,
// how each kind's ports are plugged, which driver actions each kind does; and
// the helpers that read it on the network side (vifOf) and in os-hypervisors
// (Nova's version encoding).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DRIVER_ACTIONS, KINDS, isDriverAction, kindOf, kindOfImageFormat, kindSupports } from '../../src/compute/kinds.ts';
import { versionNumber } from '../../src/compute/api/infra.ts';
import { checkImage } from '../../src/compute/api/servers.ts';
import type { ImageInfo } from '../../src/compute/api/images-access.ts';
import { ApiError } from '../../src/common/errors.ts';
import { vifOf } from '../../src/network/kinds.ts';

test('an image\'s container format picks its kind; anything else is a disk image (vm)', () => {
  for (const cf of ['docker', 'oci', 'DOCKER']) assert.equal(kindOfImageFormat(cf), 'container', cf);
  for (const cf of ['bare', 'ovf', 'ova', 'ami', 'Bare', '', null]) assert.equal(kindOfImageFormat(cf), 'vm', String(cf));
  assert.equal(kindOf('vm'), KINDS.vm);
  assert.equal(kindOf('container'), KINDS.container);
  assert.equal(kindOf('something-old'), KINDS.vm, 'an unknown kind reads as the default');
});

test('vif types: a container\'s ports are bridge (veths), a VM\'s taps; the network kind hands them as such', () => {
  assert.equal(KINDS.container.vifType, 'bridge');
  assert.equal(KINDS.vm.vifType, 'tap');
  assert.deepEqual(vifOf('tap', 2), { type: 'tap', ifname: 'eth2' });
  assert.deepEqual(vifOf('bridge', 0), { type: 'veth', ifname: 'eth0' });
  assert.deepEqual(vifOf('unbound', 1), { type: 'veth', ifname: 'eth1' }, 'anything else is plugged as a container\'s');
});

test('actions: each kind lists driver actions only, once; what no kind does is refused for both; control-plane actions work for all', () => {
  for (const [name, k] of Object.entries(KINDS)) {
    for (const a of k.actions) assert.ok(isDriverAction(a), `${name}: ${a}`);
    assert.equal(new Set(k.actions).size, k.actions.length, name);
  }
  for (const a of ['os-start', 'os-stop', 'reboot', 'rebuild', 'pause', 'unpause', 'suspend', 'resume', 'createImage', 'createBackup', 'os-getConsoleOutput',
    'resize', 'confirmResize', 'revertResize', 'migrate', 'evacuate', 'shelve', 'shelveOffload', 'unshelve', 'rescue', 'unrescue', 'attach_volume', 'detach_volume']) {
    assert.ok(kindSupports('container', a), `container ${a}`);
    assert.ok(kindSupports('vm', a), `vm ${a}`);
  }
  // live migration: VMs only
  assert.ok(kindSupports('vm', 'os-migrateLive'));
  assert.equal(kindSupports('container', 'os-migrateLive'), false);
  for (const a of ['changePassword', 'swap_volume']) {
    assert.ok(isDriverAction(a), a);
    assert.equal(kindSupports('container', a), false, `container ${a}`);
    assert.equal(kindSupports('vm', a), false, `vm ${a}`);
  }
  for (const a of ['lock', 'unlock', 'forceDelete', 'os-resetState', 'addSecurityGroup', 'addFloatingIp', 'frobnicate']) {
    assert.equal(isDriverAction(a), false, a);
    assert.ok(kindSupports('vm', a) && kindSupports('container', a), a);
  }
  assert.equal(DRIVER_ACTIONS.length, new Set(DRIVER_ACTIONS).size);
  assert.deepEqual(KINDS.container.consoles, { serial: ['serial'] });
  assert.deepEqual(KINDS.vm.consoles, { serial: ['serial'], vnc: ['novnc'] });
});

test('hypervisor versions as Nova encodes them (convert_version_to_int)', () => {
  assert.equal(versionNumber('7.2.15'), 7002015);
  assert.equal(versionNumber('8.0'), 8000000);
  assert.equal(versionNumber('9'), 9000000);
  assert.equal(versionNumber('7.2.15 (Debian 1:7.2+dfsg-7+deb12u7)'), 7002015);
  assert.equal(versionNumber('qemu'), null);
});

test('a flavor too small for the image: Nova\'s checks in its order (memory, image size, min_disk; a zero disk is not checked)', () => {
  const img = (o: Partial<ImageInfo>): ImageInfo => ({
    id: 'i', name: 'i', status: 'active', visibility: 'public', owner: null, minDisk: 0, minRam: 0, size: 4096, diskFormat: 'qcow2', containerFormat: 'bare',
    createdAt: '', updatedAt: '', protected: false, properties: {}, ...o,
  } as ImageInfo);
  const refused = (i: ImageInfo, flavor: { ram: number; disk: number }) => {
    try {
      checkImage(i, flavor);
    } catch (e) {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 400);
      return e.message;
    }
    return null;
  };
  const GiB = 1024 ** 3;
  assert.equal(refused(img({ minRam: 1024, minDisk: 50 }), { ram: 512, disk: 1 }), 'Flavor\'s memory is too small for requested image.');
  assert.equal(refused(img({ size: GiB + 1, minDisk: 5 }), { ram: 512, disk: 1 }), `Flavor's disk is too small for requested image. Flavor disk is ${GiB} bytes, image is ${GiB + 1} bytes.`);
  assert.equal(refused(img({ minDisk: 5 }), { ram: 512, disk: 1 }), `Flavor's disk is too small for requested image. Flavor disk is ${GiB} bytes, minimum required by image is ${5 * GiB} bytes.`);
  assert.equal(refused(img({ minDisk: 5, size: 10 * GiB }), { ram: 512, disk: 0 }), null, 'a zero-disk flavor: not checked');
  assert.equal(refused(img({ minDisk: 5, containerFormat: 'docker' }), { ram: 512, disk: 1 }), null, 'a container has no root disk');
  assert.equal(refused(img({ properties: { img_config_drive: 'always' } }), { ram: 512, disk: 1 }), 'Image\'s config drive option \'always\' is invalid');
  assert.equal(refused(img({ properties: { img_config_drive: 'mandatory' } }), { ram: 512, disk: 1 }), null);
});
