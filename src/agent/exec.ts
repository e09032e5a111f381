// Running host commands (runc, ip, mount...): no shell, bounded output, a
// deadline, and errors that carry the command's own message.
import { spawn, type StdioOptions } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { shQuote } from '../common/text.ts';

export interface RunResult { code: number; signal: string | null; stdout: string; stderr: string }

export interface RunOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** stdout/stderr of the child: 'pipe' (captured) unless given, e.g. a file descriptor. */
  stdout?: number | 'pipe' | 'ignore';
  stderr?: number | 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
  /** Kills the command (SIGKILL) when aborted; the run then rejects with the signal's reason once the command is reaped. */
  signal?: AbortSignal;
}

const MAX_OUTPUT = 1 << 20;

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(cmd: string, args: string[], r: RunResult) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ').slice(0, 500);
    super(`${cmd} ${args.slice(0, 4).join(' ')}${args.length > 4 ? ' …' : ''}: ${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${why ? `: ${why}` : ''}`);
    this.result = r;
  }
}

export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(o.signal.reason);
    const stdio: StdioOptions = [o.input !== undefined ? 'pipe' : 'ignore', o.stdout ?? 'pipe', o.stderr ?? 'pipe'];
    const child = spawn(cmd, args, { cwd: o.cwd, stdio, env: o.env });
    const onAbort = () => child.kill('SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < MAX_OUTPUT) stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < MAX_OUTPUT) stderr += d; });
    let timer: NodeJS.Timeout | undefined;
    if (o.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      reject(o.signal?.aborted ? o.signal.reason : err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (o.signal?.aborted) reject(o.signal.reason);
      else resolve({ code: code ?? -1, signal, stdout, stderr });
    });
    if (o.input !== undefined) child.stdin!.end(o.input);
  });
}

/** Runs a command and throws a CommandError unless it exits 0. */
export async function runOk(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) throw new CommandError(cmd, args, r);
  return r;
}

export interface SpawnOptions {
  cwd?: string;
  /** A file both stdout and stderr are appended to. */
  output?: string;
  /** The deadline (120 s unless given): the command and everything below it are killed when it passes. */
  timeoutSec?: number;
  /**
   * A shell fragment the job's own shell runs first (in `cwd`, under the same
   * deadline: for a few quick commands that would otherwise cost a shell of
   * their own); the command runs only when it succeeds. Trusted text only.
   */
  guard?: string;
}

const DEFAULT_DEADLINE_SEC = 120;
/** How often a job still not reported after its kill is looked for again. */
const REKILL_MS = 5000;

// The spawner's loop: each line is "<id>\t<command line>"; each command runs in the
// background, its stdout discarded (unless it redirects), its stderr written to
// the file "$0/<id>" (the runner's own directory; read and removed by Node on the
// answer), its exit status reported as "<id> <status>". No command substitution
// for the stderr: every process less counts when a burst of boots forks dozens.
// `jobs` reaps the background jobs that ended.
const SPAWNER = `
while IFS= read -r line; do
  id=\${line%%\t*}; cmd=\${line#*\t}
  { eval "$cmd" 2>"$0/$id" >/dev/null </dev/null; printf '%s %s\\n' "$id" $?; } &
  jobs >/dev/null
done
`;

/** The first 400 bytes of a command's stderr, on one line. */
async function readErr(file: string): Promise<string> {
  const fh = await fsp.open(file, 'r').catch(() => null);
  if (!fh) return '';
  try {
    const buf = Buffer.alloc(400);
    const { bytesRead } = await fh.read(buf, 0, 400, 0);
    return buf.subarray(0, bytesRead).toString('utf8').trimEnd().replace(/[\n\t]/g, ' ');
  } finally {
    await fh.close();
  }
}

/** The processes directly below `pid` (all its threads' children), [] once it is gone. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await fsp.readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await fsp.readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const c of text.split(' ')) if (c.trim()) out.push(Number(c));
  }
  return out;
}

/**
 * Kills every process below `pid` (not `pid` itself): each one found is
 * stopped first, so none can fork or exit into a new parent while the tree is
 * walked, then all are killed. Returns how many were killed.
 */
export async function killDescendants(pid: number): Promise<number> {
  const seen = new Set<number>();
  for (let pass = 0; pass < 20; pass++) {
    let fresh = 0;
    const queue = [pid];
    while (queue.length) {
      for (const c of await childrenOf(queue.pop()!)) {
        queue.push(c);
        if (seen.has(c)) continue;
        seen.add(c);
        fresh++;
        try { process.kill(c, 'SIGSTOP'); } catch { /* already gone */ }
      }
    }
    if (!fresh) break;
  }
  for (const c of seen) {
    try { process.kill(c, 'SIGKILL'); } catch { /* already gone */ }
  }
  return seen.size;
}

interface Job {
  done: (r: RunResult) => void;
  timer: NodeJS.Timeout;
  deadlineSec: number;
  timedOut: boolean;
}

/**
 * Runs status-only commands (mount, runc, ip...) through one long-lived /bin/sh.
 * Forking a large Node process costs milliseconds of the event loop per spawn;
 * forking a small shell costs next to nothing, so a burst of container boots
 * pays for the commands themselves only (plus one fork of the shell per command).
 */
export class Spawner {
  private child: import('node:child_process').ChildProcess | null = null;
  private readonly pending = new Map<number, Job>();
  private seq = 0;
  private buf = '';
  /** Where the commands' stderr goes, one file per command until its answer is read. */
  private errDir: string | null = null;
  private readonly ownDir: string | undefined;

  /** `dir`: the directory for the commands' stderr files (its own, made here); a fresh temp directory when not given. */
  constructor(dir?: string) {
    this.ownDir = dir;
  }

  private ensure() {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    if (!this.errDir) {
      if (this.ownDir) mkdirSync(this.ownDir, { recursive: true, mode: 0o700 });
      this.errDir = this.ownDir ?? mkdtempSync(join(tmpdir(), 'stratus-spawner-'));
    }
    const errDir = this.errDir;
    const child = spawn('/bin/sh', ['-c', SPAWNER, errDir], { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const m = /^(\d+) (\d+)$/.exec(line);
        if (!m) continue;
        const id = Number(m[1]);
        const code = Number(m[2]);
        const job = this.pending.get(id);
        this.pending.delete(id);
        if (job) clearTimeout(job.timer);
        const file = join(errDir, String(id));
        void (code === 0 ? Promise.resolve('') : readErr(file)).then(async (stderr) => {
          await fsp.rm(file, { force: true });
          // a command that ended by itself just as it was looked for keeps its own status
          if (job?.timedOut && code !== 0) job.done({ code, signal: 'SIGKILL', stdout: '', stderr: `timed out after ${job.deadlineSec} s${stderr ? `: ${stderr}` : ''}` });
          else job?.done({ code, signal: null, stdout: '', stderr });
        });
      }
    });
    child.on('exit', () => {
      if (this.child === child) this.child = null;
      for (const [, job] of this.pending) {
        clearTimeout(job.timer);
        job.done({ code: -1, signal: 'SIGKILL', stdout: '', stderr: 'the command runner exited' });
      }
      this.pending.clear();
    });
    child.stdin!.on('error', () => undefined);
    this.child = child;
    return child;
  }

  /**
   * Runs `cmd args` (no shell interpretation of the arguments); `cwd` and
   * `output` (a file both stdout and stderr are appended to) are optional.
   */
  run(cmd: string, args: string[], o: SpawnOptions = {}): Promise<RunResult> {
    const line = [
      o.cwd ? `cd ${shQuote(o.cwd)} &&` : '',
      o.guard ? `{ ${o.guard}; } &&` : '',
      [cmd, ...args].map(shQuote).join(' '),
      o.output ? `>>${shQuote(o.output)} 2>&1` : '',
    ].filter(Boolean).join(' ');
    if (line.includes('\n')) return Promise.reject(new Error('command lines may not contain newlines'));
    const id = ++this.seq;
    const deadlineSec = o.timeoutSec ?? DEFAULT_DEADLINE_SEC;
    return new Promise((resolve) => {
      const child = this.ensure();
      const job: Job = { done: resolve, deadlineSec, timedOut: false, timer: setTimeout(() => this.expire(id, child), deadlineSec * 1000) };
      job.timer.unref();
      this.pending.set(id, job);
      child.stdin!.write(`${id}\t${line}\n`);
    });
  }

  /**
   * The deadline of job `id` passed: everything below its shell is killed (the
   * shell itself then reports the status, read as a failure). The deadline is
   * kept here rather than by a `timeout` process per command (a process costs
   * milliseconds on these machines, and every boot runs one through here). The
   * job's shell is the runner's child that holds the job's stderr file open (the
   * runner's redirection of the job): once it no longer does, the command is
   * over and its status is on its way.
   */
  private expire(id: number, child: import('node:child_process').ChildProcess): void {
    const job = this.pending.get(id);
    if (!job || !child.pid || !this.errDir) return;
    const file = join(this.errDir, String(id));
    void (async () => {
      for (const shell of await childrenOf(child.pid!)) {
        const fds = await fsp.readdir(`/proc/${shell}/fd`).catch(() => [] as string[]);
        const links = await Promise.all(fds.map((fd) => fsp.readlink(`/proc/${shell}/fd/${fd}`).catch(() => '')));
        if (!links.includes(file)) continue;
        job.timedOut = true;
        await killDescendants(shell);
      }
    })().catch(() => undefined).finally(() => {
      // looked for again until the status comes (a shell between two of its commands at the first look)
      if (this.pending.get(id) === job) {
        job.timer = setTimeout(() => this.expire(id, child), REKILL_MS);
        job.timer.unref();
      }
    });
  }

  async runOk(cmd: string, args: string[], o: SpawnOptions = {}): Promise<RunResult> {
    const r = await this.run(cmd, args, o);
    if (r.code !== 0) throw new CommandError(cmd, args, r);
    return r;
  }

  close(): void {
    for (const [, job] of this.pending) clearTimeout(job.timer);
    this.child?.stdin?.end();
    this.child = null;
    // files of commands still running go with it; their answers are not waited for
    if (this.errDir) rmSync(this.errDir, { recursive: true, force: true });
    this.errDir = null;
  }
}

/** True when `program` is an executable file in one of PATH's directories. */
export function onPath(program: string): boolean {
  for (const d of (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (!d) continue;
    try {
      accessSync(join(d, program), fsConstants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}
