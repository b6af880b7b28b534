/**
 * A dependency-free log-log line chart as SVG, for benchmark results.
 */
export interface ChartInput {
  title: string;
  xLabel: string;
  yLabel: string;
  xs: number[];
  series: Array<{ name: string; ys: Array<number | null> }>;
}

const COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#333333', '#a6761d', '#66a61e'];

export function logLogChart(input: ChartInput): string {
  const W = 760, H = 460, left = 70, right = 190, top = 40, bottom = 50;
  const values = input.series.flatMap((s) => s.ys.filter((y): y is number => y !== null && y > 0));
  const lx = (v: number) => Math.log10(v);
  const [x0, x1] = [lx(Math.min(...input.xs)), lx(Math.max(...input.xs))];
  const [y0, y1] = [Math.floor(lx(Math.min(...values))), Math.ceil(lx(Math.max(...values)))];
  const px = (x: number) => left + ((lx(x) - x0) / (x1 - x0)) * (W - left - right);
  const py = (y: number) => H - bottom - ((lx(y) - y0) / (y1 - y0)) * (H - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - 90}" y="22" font-size="15">${input.title}</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e);
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end">1e${e}</text>`);
  }
  for (const x of input.xs) {
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${H - bottom}" stroke="#eee"/>`);
    const text = x >= 2 ** 30 ? `${x / 2 ** 30}G` : x >= 2 ** 20 ? `${x / 2 ** 20}M` : x >= 1024 ? `${x / 1024}K` : `${x}`;
    parts.push(`<text x="${px(x)}" y="${H - bottom + 18}" text-anchor="middle">${text}</text>`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle">${input.xLabel}</text>`);
  parts.push(`<text x="16" y="${(top + H - bottom) / 2}" transform="rotate(-90 16 ${(top + H - bottom) / 2})">${input.yLabel}</text>`);
  input.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = input.xs.map((x, j) => [x, s.ys[j]] as const).filter(([, y]) => y !== null && y! > 0);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x)},${py(y!)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${px(x)}" cy="${py(y!)}" r="3" fill="${color}"/>`);
    parts.push(`<rect x="${W - right + 15}" y="${top + i * 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${W - right + 32}" y="${top + i * 20 + 11}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
