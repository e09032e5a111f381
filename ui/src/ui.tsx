// The dashboard's small components: tables, confirmation dialogs, meters,
// form fields. Everything is rendered through Preact's text nodes and
// attributes: no HTML string is ever parsed, so a name such as
// `<img src=x onerror=alert(1)>` shows as that text.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';
import { onEvent, type ResourceEvent } from './events.ts';
import { tookNavigation } from './router.ts';

/** Loads `fn` when `deps` change; `reload` loads again. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: string | null; loading: boolean; reload: () => void; set: (d: T) => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    fn().then((d) => {
      if (!live) return;
      setData(d);
      setError(null);
      setLoading(false);
    }, (err: unknown) => {
      if (!live) return;
      setError(err instanceof Error ? err.message : String(err));
      setLoading(false);
    });
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, loading, reload: () => setN((x) => x + 1), set: setData };
}

export const errorText = (err: unknown): string => (err instanceof ApiError || err instanceof Error ? err.message : String(err));

export function ErrorNote({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return <p class="error" role="alert">{error}</p>;
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-live="polite">Loading {what}…</p>;
}

export interface Column<T> {
  key: string;
  label: string;
  /** The value sorted and filtered on. */
  value: (row: T) => string | number | null | undefined;
  render?: (row: T) => ComponentChildren;
  sortable?: boolean;
}

export interface Sort { key: string; dir: 'asc' | 'desc' }

/** A table; sorting is the caller's (client side or the API's sort_key/sort_dir). */
export function Table<T>({ columns, rows, rowKey, sort, onSort, caption, empty }: {
  columns: Column<T>[]; rows: T[]; rowKey: (r: T) => string; sort?: Sort | null; onSort?: (s: Sort) => void; caption: string; empty?: string;
}) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => {
              const active = sort?.key === c.key;
              const aria = active ? (sort!.dir === 'asc' ? 'ascending' : 'descending') : undefined;
              return (
                <th scope="col" key={c.key} aria-sort={aria}>
                  {onSort && c.sortable !== false
                    ? <button type="button" class="sort" onClick={() => onSort({ key: c.key, dir: active && sort!.dir === 'asc' ? 'desc' : 'asc' })}>
                      {c.label}<span aria-hidden="true">{active ? (sort!.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
                    </button>
                    : c.label}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0
            ? <tr><td colSpan={columns.length} class="muted">{empty ?? 'Nothing here yet.'}</td></tr>
            : rows.map((r) => <tr key={rowKey(r)}>{columns.map((c) => <td key={c.key} data-label={c.label}>{c.render ? c.render(r) : String(c.value(r) ?? '')}</td>)}</tr>)}
        </tbody>
      </table>
    </div>
  );
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''), undefined, { numeric: true });
}

/** A table sorted, filtered and paged in the browser (lists the API returns whole). */
export function ClientTable<T>({ columns, rows, rowKey, caption, pageSize = 50, initialSort }: {
  columns: Column<T>[]; rows: T[]; rowKey: (r: T) => string; caption: string; pageSize?: number; initialSort?: Sort;
}) {
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<Sort | null>(initialSort ?? null);
  const [page, setPage] = useState(0);
  const f = filter.trim().toLowerCase();
  let shown = f ? rows.filter((r) => columns.some((c) => String(c.value(r) ?? '').toLowerCase().includes(f))) : rows;
  if (sort) {
    const col = columns.find((c) => c.key === sort.key);
    if (col) shown = [...shown].sort((a, b) => (sort.dir === 'asc' ? 1 : -1) * compare(col.value(a), col.value(b)));
  }
  const pages = Math.max(1, Math.ceil(shown.length / pageSize));
  const p = Math.min(page, pages - 1);
  return (
    <div>
      <div class="toolbar">
        <label>Filter <input type="search" value={filter} onInput={(e) => { setFilter(e.currentTarget.value); setPage(0); }} /></label>
        <span class="muted">{shown.length} of {rows.length}</span>
      </div>
      <Table columns={columns} rows={shown.slice(p * pageSize, (p + 1) * pageSize)} rowKey={rowKey} sort={sort} onSort={setSort} caption={caption} />
      {pages > 1 && (
        <nav class="pager" aria-label={`${caption} pages`}>
          <button type="button" disabled={p === 0} onClick={() => setPage(p - 1)}>Previous</button>
          <span>Page {p + 1} of {pages}</span>
          <button type="button" disabled={p >= pages - 1} onClick={() => setPage(p + 1)}>Next</button>
        </nav>
      )}
    </div>
  );
}

/**
 * A button that asks first, in a modal dialog: the rest of the page inert
 * while it is open (the keyboard stays in it), Escape or Cancel leaves it,
 * and focus goes back to the button. A dangerous action's dialog starts on
 * Cancel, so Enter alone never deletes.
 */
export function ConfirmButton({ label, question, onConfirm, danger, disabled }: {
  label: string; question: string; onConfirm: () => Promise<void> | void; danger?: boolean; disabled?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      ref.current?.close();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" ref={opener} class={danger ? 'danger' : ''} disabled={disabled} onClick={() => { setError(null); ref.current?.showModal(); }}>{label}</button>
      <dialog ref={ref} aria-label={label} onClose={() => refocus(opener.current)}>
        <p>{question}</p>
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" class={danger ? 'danger' : 'primary'} disabled={busy} onClick={confirm}>{busy ? 'Working…' : label}</button>
          <button type="button" autofocus={danger} onClick={() => ref.current?.close()}>Cancel</button>
        </div>
      </dialog>
    </>
  );
}

/** Focus back on the button that opened a dialog, when it is still on the page and usable (else the page's title). */
function refocus(opener: HTMLButtonElement | null): void {
  if (opener?.isConnected && !opener.disabled) opener.focus();
  else if (!document.activeElement || document.activeElement === document.body) document.getElementById('page-title')?.focus();
}

/** A create form: `submit` runs the API call; the API's refusal (its validation message) is shown in the form. */
export function CreateForm({ title, submit, children, label = 'Create' }: { title: string; submit: () => Promise<void>; children: ComponentChildren; label?: string }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form class="form card" aria-label={title} onSubmit={async (e) => {
      e.preventDefault();
      setBusy(true);
      setError(null);
      try {
        await submit();
      } catch (err) {
        setError(errorText(err));
      } finally {
        setBusy(false);
      }
    }}>
      <h2>{title}</h2>
      {children}
      <ErrorNote error={error} />
      <button type="submit" class="primary" disabled={busy}>{busy ? 'Working…' : label}</button>
    </form>
  );
}

/**
 * A button that opens a small form in a modal dialog (an action that takes
 * arguments: extend to a size, attach a volume). The API's refusal is shown
 * in the dialog, which stays open; success closes it.
 */
export function DialogForm({ label, title, submit, children, disabled }: {
  label: string; title?: string; submit: () => Promise<void>; children: ComponentChildren; disabled?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <button type="button" ref={opener} disabled={disabled} onClick={() => { setError(null); ref.current?.showModal(); }}>{label}</button>
      <dialog ref={ref} aria-label={title ?? label} onClose={() => refocus(opener.current)}>
        <form class="form" onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await submit();
            ref.current?.close();
          } catch (err) {
            setError(errorText(err));
          } finally {
            setBusy(false);
          }
        }}>
          <h2>{title ?? label}</h2>
          {children}
          <ErrorNote error={error} />
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>{busy ? 'Working…' : label}</button>
            <button type="button" onClick={() => ref.current?.close()}>Cancel</button>
          </div>
        </form>
      </dialog>
    </>
  );
}

/** Calls `fn` at most once per `ms` while events keep coming (a burst of changes is one reload). */
export function debounce(fn: () => void, ms = 300): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const f = () => {
    timer ??= setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  f.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return f;
}

/** Calls `reload` (once for a burst) when an event of the session's stream passes `which`: a list kept live. */
export function useLiveReload(which: (e: ResourceEvent) => boolean, reload: () => void, deps: unknown[] = []): void {
  useEffect(() => {
    const soon = debounce(reload);
    const off = onEvent((e) => {
      if (which(e)) soon();
    });
    return () => {
      off();
      soon.cancel();
    };
  }, deps);
}

/** An upload's progress (0..1) of a file of `size` bytes, as a labelled progress bar. */
export function UploadProgress({ progress, size }: { progress: number; size: number | null | undefined }) {
  return (
    <label class="field">
      <span>Upload progress</span>
      <progress max={1} value={progress}>{Math.round(progress * 100)}%</progress>
      <small class="muted">{Math.round(progress * 100)}% of {formatBytes(size)}</small>
    </label>
  );
}

export function Field({ label, error, children, hint }: { label: string; error?: string | null; children: ComponentChildren; hint?: string }) {
  return (
    <label class={`field${error ? ' invalid' : ''}`}>
      <span>{label}</span>
      {children}
      {hint && <small class="muted">{hint}</small>}
      {error && <small class="error" role="alert">{error}</small>}
    </label>
  );
}

const STATUS_CLASS: Record<string, string> = {
  ACTIVE: 'ok', available: 'ok', 'in-use': 'ok', active: 'ok', UP: 'ok', DOWN: 'off',
  BUILD: 'busy', queued: 'busy', saving: 'busy', importing: 'busy', uploading: 'busy', creating: 'busy',
  ERROR: 'bad', error: 'bad', killed: 'bad', SHUTOFF: 'off', PAUSED: 'off', SUSPENDED: 'off', deleted: 'off', DELETED: 'off',
};
export function Status({ value }: { value: string | null | undefined }) {
  const v = value ?? '—';
  const cls = STATUS_CLASS[v] ?? (/error|fail/i.test(v) ? 'bad' : 'busy');
  return <span class={`status ${cls}`}>{v}</span>;
}

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Stratus`;
  }, [title]);
  // a page opened by a link or a button (or after logging in): its title takes the focus, so the keyboard
  // carries on from the top of the new page, not from the document's start or the last page's link
  useEffect(() => {
    const at = document.activeElement;
    if (tookNavigation() || !at || at === document.body) heading.current?.focus({ preventScroll: true });
  }, []);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1} ref={heading}>{title}</h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

/**
 * Tabs as the ARIA tabs pattern has them, with manual activation: one stop
 * for the keyboard (the current tab); the arrow keys, Home and End move
 * along the tabs, Enter or Space opens one (so arrowing past a console's tab
 * never opens the console and hands it the keyboard).
 */
export function Tabs({ tabs, current, onSelect }: { tabs: Array<[string, string]>; current: string; onSelect: (k: string) => void }) {
  const stop = tabs.some(([k]) => k === current) ? current : tabs[0]?.[0];
  const key = (e: JSX.TargetedKeyboardEvent<HTMLButtonElement>, i: number) => {
    const n = tabs.length;
    const j = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault();
    (e.currentTarget.parentElement?.children[j] as HTMLElement | undefined)?.focus();
  };
  return (
    <div class="tabs" role="tablist">
      {tabs.map(([k, label], i) => (
        <button type="button" role="tab" key={k} aria-selected={k === current} tabIndex={k === stop ? 0 : -1} class={k === current ? 'current' : ''}
          onClick={() => onSelect(k)} onKeyDown={(e) => key(e, i)}>{label}</button>
      ))}
    </div>
  );
}

export type InputEvent = JSX.TargetedEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, Event>;
/** The value of an input's event. */
export const val = (e: InputEvent): string => e.currentTarget.value;

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}
