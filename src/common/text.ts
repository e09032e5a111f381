/**
 * The last `n` lines of a log as Nova's console output gives them: the text is
 * split on '\n' and the last n pieces joined again, so a trailing newline
 * counts as an (empty) last line. n = 0 gives ''.
 */
export function tailLines(text: string, n: number): string {
  if (n <= 0) return '';
  return text.split('\n').slice(-n).join('\n');
}
