// Running host commands (runc, ip, mount...): no shell, bounded output, a
// timeout, and errors that carry the command's own message.
import { spawn, type StdioOptions } from 'node:child_process';

export interface RunResult { code: number; signal: string | null; stdout: string; stderr: string }

export interface RunOptions {
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** stdout/stderr of the child: 'pipe' (captured) unless given, e.g. a file descriptor. */
  stdout?: number | 'pipe' | 'ignore';
  stderr?: number | 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
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
    const stdio: StdioOptions = [o.input !== undefined ? 'pipe' : 'ignore', o.stdout ?? 'pipe', o.stderr ?? 'pipe'];
    const child = spawn(cmd, args, { cwd: o.cwd, stdio, env: o.env });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < MAX_OUTPUT) stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < MAX_OUTPUT) stderr += d; });
    let timer: NodeJS.Timeout | undefined;
    if (o.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
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
