// A small hash router: `#/servers/abc?x=1` is the route `/servers/abc` with
// its query. Hash URLs keep every page at `/`, which the server answers with
// the one index.html.
import { useEffect, useState } from 'preact/hooks';

export interface Location { path: string; query: URLSearchParams }

function current(): Location {
  const h = location.hash.replace(/^#/, '') || '/';
  const q = h.indexOf('?');
  return { path: q < 0 ? h : h.slice(0, q), query: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)) };
}

// Whether the location changed since a page last looked (Page focuses its title after one).
let moved = false;
addEventListener('hashchange', () => {
  moved = true;
});
/** Whether the hash route changed since the last call. */
export function tookNavigation(): boolean {
  const m = moved;
  moved = false;
  return m;
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const on = () => setLoc(current());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return loc;
}

export function navigate(path: string): void {
  location.hash = path;
}

/** Matches `/servers/:id` against a path: the parameters, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/');
  const a = path.split('/');
  if (p.length !== a.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(':')) out[p[i]!.slice(1)] = decodeURIComponent(a[i]!);
    else if (p[i] !== a[i]) return null;
  }
  return out;
}
