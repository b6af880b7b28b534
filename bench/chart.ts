/**
 * Dependency-free SVG charts for the generated performance page: lines on log or linear axes (round trip vs
 * size, CPU vs rate) and horizontal bars on a log axis (throughput).
 */
export interface LineChartInput {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  xTick?: (x: number) => string;
  logY?: boolean;
  series: Array<{ name: string; ys: Array<number | null>; dashed?: boolean }>;
}

const COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#333333', '#1f78b4', '#b15928', '#6a3d9a', '#999999', '#fb9a99', '#000000'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/`/g, '');

function header(w: number, h: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="22" font-size="15" text-anchor="middle">${esc(title)}</text>`,
  ];
}

const tickLabel = (e: number) => (e >= 0 && e <= 6 ? String(10 ** e) : `1e${e}`);

/** Lines over x (always log scale); y on a log scale unless `logY` is false. */
export function lineChart(input: LineChartInput): string {
  const W = 820, H = 480, left = 70, right = 300, top = 40, bottom = 50;
  const logY = input.logY !== false;
  const values = input.series.flatMap((s) => s.ys.filter((y): y is number => y !== null && Number.isFinite(y) && y > 0));
  const lx = Math.log10;
  const [x0, x1] = [lx(Math.min(...input.xs)), lx(Math.max(...input.xs))];
  const yMin = values.length ? Math.min(...values) : 1;
  const yMax = values.length ? Math.max(...values) : 10;
  const [y0, y1] = logY ? [Math.floor(lx(yMin)), Math.ceil(lx(yMax))] : [0, yMax * 1.1];
  const px = (x: number) => left + ((lx(x) - x0) / (x1 - x0 || 1)) * (W - left - right);
  const py = (y: number) => H - bottom - (((logY ? lx(y) : y) - y0) / (y1 - y0 || 1)) * (H - top - bottom);
  const parts = header(W, H, input.title);
  if (logY) {
    for (let e = y0; e <= y1; e++) {
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${py(10 ** e)}" y2="${py(10 ** e)}" stroke="#ddd"/>`);
      parts.push(`<text x="${left - 8}" y="${py(10 ** e) + 4}" text-anchor="end">${tickLabel(e)}</text>`);
    }
  } else {
    for (let i = 0; i <= 5; i++) {
      const v = (y1 / 5) * i;
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`);
      parts.push(`<text x="${left - 8}" y="${py(v) + 4}" text-anchor="end">${v.toPrecision(2)}</text>`);
    }
  }
  for (const x of input.xs) {
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${H - bottom}" stroke="#eee"/>`);
    parts.push(`<text x="${px(x)}" y="${H - bottom + 18}" text-anchor="middle">${esc(input.xTick ? input.xTick(x) : String(x))}</text>`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle">${esc(input.xLabel)}</text>`);
  parts.push(`<text x="16" y="${(top + H - bottom) / 2}" transform="rotate(-90 16 ${(top + H - bottom) / 2})" text-anchor="middle">${esc(input.yLabel)}</text>`);
  input.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = input.xs.map((x, j) => [x, s.ys[j]] as const).filter(([, y]) => y !== null && y !== undefined && Number.isFinite(y) && y > 0);
    const dash = s.dashed ? ' stroke-dasharray="5,4"' : '';
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y!).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y!).toFixed(1)}" r="3" fill="${color}"/>`);
    parts.push(`<rect x="${W - right + 15}" y="${top + i * 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${W - right + 32}" y="${top + i * 20 + 11}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Horizontal bars on a log scale, one per entry, with the value written beside. */
export function barChart(input: { title: string; unit: string; bars: Array<{ name: string; value: number; highlight?: boolean }> }): string {
  const bars = input.bars.filter((b) => Number.isFinite(b.value) && b.value > 0);
  const W = 820, left = 300, right = 120, top = 40, row = 26;
  const H = top + bars.length * row + 40;
  const lx = Math.log10;
  const lo = Math.floor(lx(Math.min(...bars.map((b) => b.value), 1e9))) - 0;
  const hi = Math.ceil(lx(Math.max(...bars.map((b) => b.value), 1)));
  const px = (v: number) => left + ((lx(v) - lo) / (hi - lo || 1)) * (W - left - right);
  const parts = header(W, H, input.title);
  for (let e = lo; e <= hi; e++) {
    parts.push(`<line x1="${px(10 ** e)}" x2="${px(10 ** e)}" y1="${top - 5}" y2="${H - 30}" stroke="#ddd"/>`);
    parts.push(`<text x="${px(10 ** e)}" y="${H - 14}" text-anchor="middle">${tickLabel(e)}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * row;
    parts.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(b.name)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 3}" width="${Math.max(1, px(b.value) - left).toFixed(1)}" height="${row - 8}" fill="${b.highlight ? '#d95f02' : '#1b9e77'}"/>`);
    parts.push(`<text x="${px(b.value) + 6}" y="${y + 15}">${Math.round(b.value).toLocaleString('en-US')}</text>`);
  });
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 1}" text-anchor="middle">${esc(input.unit)} (log scale)</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
