// Usage as a horizontal bar chart: Chart.js (tree-shaken to its bar chart,
// category and linear scales and tooltips), drawn on a canvas the caller
// owns. Its own module, so the overview loads it as a chunk after its figures
// show. Chart.js sets the canvas's size through the CSSOM (element.style),
// which the CSP allows, and injects no style sheet. Colours are the theme's
// CSS variables, read again when the colour scheme changes.
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

/** One bar: what it counts, how much is used of its limit (negative: unlimited), and that said in words (the tooltip). */
export interface Bar { label: string; used: number; limit: number; text: string }

/** How full a bar is (0..1): none of an unlimited one; a zero limit with something used is full. */
const fraction = (b: Bar): number => (b.limit < 0 || b.limit === 0 ? (b.used > 0 && b.limit === 0 ? 1 : 0) : Math.min(1, b.used / b.limit));

function colours() {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return { fg: v('--fg'), muted: v('--muted'), line: v('--line'), low: v('--ok'), mid: v('--busy'), high: v('--bad') };
}

/** Draws `bars` on `canvas` (each bar the percentage used, its colour by how full); returns the undo. */
export function drawUsage(canvas: HTMLCanvasElement, bars: Bar[]): () => void {
  const pct = bars.map((b) => Math.round(fraction(b) * 1000) / 10);
  const build = () => {
    const c = colours();
    Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
    return new Chart(canvas, {
      type: 'bar',
      data: {
        labels: bars.map((b) => b.label),
        datasets: [
          { label: 'Used', data: pct, backgroundColor: pct.map((p) => (p >= 90 ? c.high : p >= 70 ? c.mid : c.low)), borderRadius: 3, barPercentage: 0.7 },
          { label: 'Free', data: pct.map((p) => 100 - p), backgroundColor: c.line, borderRadius: 3, barPercentage: 0.7 },
        ],
      },
      options: {
        indexAxis: 'y', responsive: true, maintainAspectRatio: false, animation: false,
        scales: {
          x: { stacked: true, min: 0, max: 100, ticks: { color: c.muted, callback: (v) => `${v}%` }, grid: { color: c.line } },
          y: { stacked: true, ticks: { color: c.fg }, grid: { display: false } },
        },
        plugins: {
          tooltip: {
            filter: (item) => item.datasetIndex === 0,
            callbacks: { label: (item) => `${bars[item.dataIndex]!.text} (${pct[item.dataIndex]}%)` },
          },
        },
      },
    });
  };
  let chart = build();
  // a change of light or dark draws it again in the new colours
  const scheme = matchMedia('(prefers-color-scheme: dark)');
  const redraw = () => {
    chart.destroy();
    chart = build();
  };
  scheme.addEventListener('change', redraw);
  return () => {
    scheme.removeEventListener('change', redraw);
    chart.destroy();
  };
}
