// TEMPORARY: registry bytes as files under a directory, until the object
// store's in-process interface lands (then storage.ts's implementation over
// it replaces this file).
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { RegistryStorage } from './storage.ts';

export class FileRegistryStorage implements RegistryStorage {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  private path(project: string, key: string) {
    return join(this.dir, project, key);
  }
  async put(project: string, key: string, data: Readable) {
    const p = this.path(project, key);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${randomBytes(4).toString('hex')}.tmp`;
    let size = 0;
    data.on('data', (c: Buffer) => { size += c.length; });
    try {
      await pipeline(data, createWriteStream(tmp));
      await rename(tmp, p);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { size };
  }
  async open(project: string, key: string, range?: { start: number; end: number }) {
    const p = this.path(project, key);
    if (!existsSync(p)) return undefined;
    return createReadStream(p, range ?? {});
  }
  async size(project: string, key: string) {
    try {
      return (await stat(this.path(project, key))).size;
    } catch {
      return undefined;
    }
  }
  async delete(project: string, key: string) {
    await rm(this.path(project, key), { force: true });
  }
  async compose(project: string, target: string, parts: string[]) {
    const p = this.path(project, target);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${randomBytes(4).toString('hex')}.tmp`;
    const out = createWriteStream(tmp);
    let size = 0;
    for (const part of parts) {
      for await (const c of createReadStream(this.path(project, part))) {
        size += (c as Buffer).length;
        if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    }
    await new Promise<void>((r) => out.end(() => r()));
    await rename(tmp, p);
    return { size };
  }
  async copy(fromProject: string, fromKey: string, toProject: string, toKey: string) {
    const to = this.path(toProject, toKey);
    await mkdir(dirname(to), { recursive: true });
    await rm(to, { force: true });
    await link(this.path(fromProject, fromKey), to);
  }
  async list(project: string, prefix: string) {
    const out: Array<{ key: string; modified: number }> = [];
    const walk = async (rel: string) => {
      let names: string[] = [];
      try { names = await readdir(join(this.dir, project, rel)); } catch { return; }
      for (const n of names) {
        const r = rel ? `${rel}/${n}` : n;
        const s = await stat(join(this.dir, project, r));
        if (s.isDirectory()) await walk(r);
        else if (r.startsWith(prefix) && !r.endsWith('.tmp')) out.push({ key: r, modified: s.mtimeMs });
      }
    };
    await walk(prefix.split('/')[0]!);
    return out;
  }
}
