// The agent's outgoing reports: every report queued while a report call is in
// flight goes in the next call (one POST for a burst); a resource's report
// that says the same as the last one sent is not sent again; a call that
// fails is retried with backoff (the newest report of a resource wins over an
// older one waiting); a batch the server refuses as it is (a 4xx other than
// 401/404, which a restarted or failed-over server may answer for a while)
// is dropped, since sending it again would not help.
import type { Logger } from 'pino';
import type { ReportRequest, RequestReport, ResourceReport } from '../fleet/protocol.ts';
import { HttpError } from './client.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ReportBatcher {
  private readonly send: (r: ReportRequest) => Promise<void>;
  private readonly log: Logger;
  private readonly retryBaseMs: number;
  private readonly last = new Map<string, string>();
  private pending = new Map<string, ResourceReport>();
  private requests: RequestReport[] = [];
  private flushing: Promise<void> | null = null;
  private stopping = false;

  constructor(o: { send(r: ReportRequest): Promise<void>; log: Logger; retryBaseMs?: number }) {
    this.send = o.send;
    this.log = o.log;
    this.retryBaseMs = o.retryBaseMs ?? 250;
  }

  /** Queues a resource's report (unless it says what was last said) and sends it soon. */
  resource(r: ResourceReport): void {
    const key = `${r.kind}/${r.id}`;
    const text = JSON.stringify(r);
    if (this.last.get(key) === text) return;
    this.last.set(key, text);
    this.pending.set(key, r);
    void this.flush();
  }

  /** Queues the answer to a request. */
  request(r: RequestReport): void {
    this.requests.push(r);
    void this.flush();
  }

  /** Forgets what was said about a resource (it left the host: a later report is news). */
  forget(kind: string, id: string): void {
    this.last.delete(`${kind}/${id}`);
  }

  /** Sends everything queued; a call in flight collects the next batch. Resolves once nothing waits (or, stopping, after a few tries). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.pending.size && !this.requests.length) return Promise.resolve();
    this.flushing = (async () => {
      for (let attempt = 0; this.pending.size || this.requests.length; attempt++) {
        const resources = [...this.pending.values()];
        const requests = this.requests;
        this.pending = new Map();
        this.requests = [];
        try {
          await this.send({ ...(resources.length ? { resources } : {}), ...(requests.length ? { requests } : {}) });
          attempt = -1;
        } catch (err) {
          if (err instanceof HttpError && err.status >= 400 && err.status < 500 && err.status !== 404 && err.status !== 401) {
            this.log.error({ err: err.message }, 'report refused; dropped');
            attempt = -1;
            continue;
          }
          this.log.warn({ err: (err as Error).message }, 'report failed, retrying');
          for (const r of resources) {
            const key = `${r.kind}/${r.id}`;
            if (!this.pending.has(key)) this.pending.set(key, r);
          }
          this.requests.unshift(...requests);
          if (this.stopping && attempt >= 2) return;
          await sleep(Math.min(this.retryBaseMs * 2 ** attempt, 5000));
        }
      }
    })().finally(() => {
      this.flushing = null;
      if (!this.stopping && (this.pending.size || this.requests.length)) void this.flush();
    });
    return this.flushing;
  }

  /** The last flush before the agent stops: a few tries, then give up. */
  async close(): Promise<void> {
    this.stopping = true;
    await this.flush();
  }
}
