// Prometheus text exposition of request counts and latency histograms per route and status.

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series { count: number; sum: number; buckets: number[] }

export class Metrics {
  private readonly series = new Map<string, Series>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `method="${method}",route="${route.replaceAll('"', '\\"')}",status="${status}"`;
    let s = this.series.get(key);
    if (!s) {
      s = { count: 0, sum: 0, buckets: BUCKETS.map(() => 0) };
      this.series.set(key, s);
    }
    s.count++;
    s.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) s.buckets[i]!++;
  }

  render(): string {
    const out: string[] = [
      '# HELP stratus_http_requests_total HTTP requests served, by route and status.',
      '# TYPE stratus_http_requests_total counter',
    ];
    for (const [k, s] of this.series) out.push(`stratus_http_requests_total{${k}} ${s.count}`);
    out.push(
      '# HELP stratus_http_request_duration_seconds HTTP request latency, by route and status.',
      '# TYPE stratus_http_request_duration_seconds histogram',
    );
    for (const [k, s] of this.series) {
      BUCKETS.forEach((b, i) => out.push(`stratus_http_request_duration_seconds_bucket{${k},le="${b}"} ${s.buckets[i]}`));
      out.push(`stratus_http_request_duration_seconds_bucket{${k},le="+Inf"} ${s.count}`);
      out.push(`stratus_http_request_duration_seconds_sum{${k}} ${s.sum}`);
      out.push(`stratus_http_request_duration_seconds_count{${k}} ${s.count}`);
    }
    const mem = process.memoryUsage();
    out.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
    return out.join('\n') + '\n';
  }
}
