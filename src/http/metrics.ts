// Prometheus text exposition of request counts and latency histograms per route and status.

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series { labels: string; count: number; sum: number; buckets: number[] }

/** A Prometheus label value: backslash, double quote and newline escaped. */
const labelValue = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

export class Metrics {
  // Keyed by route, then by a short "method status" key: a request builds no
  // escaped label string (that is made once per series).
  private readonly byRoute = new Map<string, Map<string, Series>>();

  observe(method: string, route: string, status: number, seconds: number): void {
    let perRoute = this.byRoute.get(route);
    if (!perRoute) {
      perRoute = new Map();
      this.byRoute.set(route, perRoute);
    }
    const k = `${method} ${status}`;
    let s = perRoute.get(k);
    if (!s) {
      s = { labels: `method="${labelValue(method)}",route="${labelValue(route)}",status="${status}"`, count: 0, sum: 0, buckets: BUCKETS.map(() => 0) };
      perRoute.set(k, s);
    }
    s.count++;
    s.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) s.buckets[i]!++;
  }

  private *all(): Iterable<Series> {
    for (const perRoute of this.byRoute.values()) yield* perRoute.values();
  }

  render(): string {
    const out: string[] = [
      '# HELP stratus_http_requests_total HTTP requests served, by route and status.',
      '# TYPE stratus_http_requests_total counter',
    ];
    for (const s of this.all()) out.push(`stratus_http_requests_total{${s.labels}} ${s.count}`);
    out.push(
      '# HELP stratus_http_request_duration_seconds HTTP request latency, by route and status.',
      '# TYPE stratus_http_request_duration_seconds histogram',
    );
    for (const s of this.all()) {
      const k = s.labels;
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
