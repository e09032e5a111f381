// The containers' seccomp filter: Podman's default profile, as Debian's
// golang-github-containers-common package ships it
// (/usr/share/containers/seccomp.json, Docker's profile format), translated
// into the OCI runtime spec's `linux.seccomp` the way Docker and Podman do it
// when they build a container: only the rules for this machine's architecture
// and for the capabilities the container holds. The file is read once per
// agent process and each translation is kept per capability set, so a boot
// costs a map lookup.
import * as fsp from 'node:fs/promises';
import { release } from 'node:os';

export const SECCOMP_PROFILE_PATH = '/usr/share/containers/seccomp.json';
export const SECCOMP_PROFILE_PACKAGE = 'golang-github-containers-common';

/** Docker's profile format (github.com/containers/common/pkg/seccomp, moby's profiles/seccomp). */
interface ProfileFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}
interface ProfileArg { index: number; value: number; valueTwo?: number; op: string }
interface ProfileSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: ProfileArg[] | null;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
}
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] }>;
  syscalls: ProfileSyscall[];
}

/** The OCI runtime spec's linux.seccomp. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; errnoRet?: number; args?: ProfileArg[] }>;
}

/** Node's process.arch → Go's GOARCH (what the profile's `arches` name) and libseccomp's native architecture. */
const ARCHES: Record<string, { go: string; scmp: string }> = {
  x64: { go: 'amd64', scmp: 'SCMP_ARCH_X86_64' },
  arm64: { go: 'arm64', scmp: 'SCMP_ARCH_AARCH64' },
  ia32: { go: '386', scmp: 'SCMP_ARCH_X86' },
  arm: { go: 'arm', scmp: 'SCMP_ARCH_ARM' },
  ppc64: { go: 'ppc64le', scmp: 'SCMP_ARCH_PPC64LE' },
  s390x: { go: 's390x', scmp: 'SCMP_ARCH_S390X' },
  riscv64: { go: 'riscv64', scmp: 'SCMP_ARCH_RISCV64' },
};

/** "6.1.0-13-amd64" → [6, 1]. */
function kernelVersion(text: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}
const atLeast = (have: [number, number], want: [number, number]) => have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]);

/**
 * The profile's rules that apply to a container with `caps` (its bounding
 * set) on `arch`, as Docker's and Podman's setupSeccomp decide it: a rule is
 * dropped when the container holds one of its excluded capabilities or runs
 * on an excluded architecture or kernel, or lacks one of its included ones.
 */
export function translateProfile(p: SeccompProfile, caps: readonly string[], arch = process.arch, kernel = release()): OciSeccomp {
  const a = ARCHES[arch];
  if (!a) throw new Error(`no seccomp architecture known for ${arch}`);
  const have = new Set(caps);
  const kv = kernelVersion(kernel);
  const native = p.archMap?.find((m) => m.architecture === a.scmp);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const s of p.syscalls) {
    const inc = s.includes ?? {};
    const exc = s.excludes ?? {};
    if (exc.arches?.includes(a.go)) continue;
    if (exc.caps?.some((c) => have.has(c))) continue;
    if (exc.minKernel && atLeast(kv, kernelVersion(exc.minKernel))) continue;
    if (inc.arches?.length && !inc.arches.includes(a.go)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => have.has(c))) continue;
    if (inc.minKernel && !atLeast(kv, kernelVersion(inc.minKernel))) continue;
    const names = s.names?.length ? s.names : s.name ? [s.name] : [];
    if (!names.length) continue;
    syscalls.push({
      names,
      action: s.action,
      ...(s.errnoRet !== undefined && s.errnoRet !== null ? { errnoRet: s.errnoRet } : {}),
      ...(s.args?.length ? { args: s.args.map((x) => ({ index: x.index, value: x.value, valueTwo: x.valueTwo ?? 0, op: x.op })) } : {}),
    });
  }
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures: native ? [native.architecture, ...(native.subArchitectures ?? [])] : [a.scmp],
    syscalls,
  };
}

let loaded: Promise<SeccompProfile> | null = null;
const translated = new Map<string, OciSeccomp>();

/** Reads the profile once per process (a failed read is retried next time). */
export function loadSeccompProfile(path = SECCOMP_PROFILE_PATH): Promise<SeccompProfile> {
  loaded ??= (async () => {
    const text = await fsp.readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`the containers' seccomp profile ${path} is missing (${err.code}): apt-get install ${SECCOMP_PROFILE_PACKAGE}`);
    });
    const p = JSON.parse(text) as SeccompProfile;
    if (typeof p.defaultAction !== 'string' || !Array.isArray(p.syscalls)) throw new Error(`${path} is not a seccomp profile`);
    return p;
  })().catch((err: Error) => {
    loaded = null;
    throw err;
  });
  return loaded;
}

/** linux.seccomp for a container holding `caps`, translated once per capability set. */
export async function seccompFor(caps: readonly string[]): Promise<OciSeccomp> {
  const key = [...caps].sort().join(',');
  let s = translated.get(key);
  if (!s) {
    s = translateProfile(await loadSeccompProfile(), caps);
    translated.set(key, s);
  }
  return s;
}
