// The Docker-format seccomp profile → OCI linux.seccomp translation: rules kept
// or dropped by the container's capabilities, the architecture and the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SECCOMP_PROFILE_PATH, loadSeccompProfile, translateProfile, type SeccompProfile } from '../../src/agent/drivers/container/seccomp.ts';
import { DEFAULT_CAPS } from '../../src/agent/drivers/container/spec.ts';

const profile: SeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [], includes: {}, excludes: {} },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['s390_runtime_instr'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['s390x'] } },
    { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['chroot'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_CHROOT'] } },
    { names: ['clone3'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.3' } },
    { names: ['futex_waitv'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '7.1' } },
    { names: ['uselib'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { minKernel: '6.0' } },
  ],
};

test('a rule applies when the container has all its included capabilities and none of its excluded ones', () => {
  const s = translateProfile(profile, ['CAP_SYS_CHROOT'], 'x64', '6.1.0-13-amd64');
  const names = s.syscalls.map((r) => `${r.names.join('+')}:${r.action}`);
  assert.deepEqual(names, ['read+write:SCMP_ACT_ALLOW', 'personality:SCMP_ACT_ALLOW', 'arch_prctl:SCMP_ACT_ALLOW', 'mount:SCMP_ACT_ERRNO', 'chroot:SCMP_ACT_ALLOW', 'clone3:SCMP_ACT_ALLOW']);
  assert.equal(s.syscalls.find((r) => r.names[0] === 'mount')!.errnoRet, 1);
  assert.deepEqual(s.syscalls[1]!.args, [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
  assert.equal(s.syscalls[0]!.args, undefined);
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 38);

  const admin = translateProfile(profile, ['CAP_SYS_ADMIN'], 'arm64', '5.10.0');
  assert.deepEqual(admin.syscalls.map((r) => `${r.names[0]}:${r.action}`), ['read:SCMP_ACT_ALLOW', 'personality:SCMP_ACT_ALLOW', 'mount:SCMP_ACT_ALLOW', 'clone3:SCMP_ACT_ALLOW', 'uselib:SCMP_ACT_ERRNO']);
  assert.deepEqual(admin.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
});

test('Podman\'s profile from golang-github-containers-common, for Docker\'s default capabilities on x86-64', { skip: existsSync(SECCOMP_PROFILE_PATH) ? false : `${SECCOMP_PROFILE_PATH} is not installed` }, async () => {
  const s = translateProfile(await loadSeccompProfile(), DEFAULT_CAPS, 'x64', '6.1.0');
  const allowed = new Set(s.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
  for (const n of ['read', 'execve', 'clone', 'chroot', 'arch_prctl', 'socket']) assert.ok(allowed.has(n), n);
  // CAP_SYS_ADMIN-only and listed-nowhere calls are not allowed; other architectures' are dropped
  for (const n of ['add_key', 'request_key', 'bpf', 'perf_event_open', 's390_runtime_instr', 'arm_fadvise64_64']) assert.ok(!allowed.has(n), n);
  assert.ok(s.syscalls.some((r) => r.names.includes('perf_event_open') && r.action === 'SCMP_ACT_ERRNO'));
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
});
