/**
 * The last `n` lines of a log as Nova's console output gives them: the text is
 * split on '\n' and the last n pieces joined again, so a trailing newline
 * counts as an (empty) last line. n = 0 gives ''.
 */
export function tailLines(text: string, n: number): string {
  if (n <= 0) return '';
  return text.split('\n').slice(-n).join('\n');
}

/**
 * Orders strings by UTF-16 code units, as Array.prototype.sort does. Unlike
 * localeCompare it needs none of ICU's collation data (2 MiB of RSS once touched).
 */
export const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Quotes one word for sh (and for a shell-sourced file such as openrc). */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const MARKUP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' };
/**
 * Text for XML and HTML element content and attribute values: the five
 * special characters as references (`'` as `&#x27;`, which both read, as
 * Python's html.escape writes it), the characters XML 1.0 cannot hold dropped.
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => MARKUP[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '');
}
