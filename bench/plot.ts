/**
 * A small SVG line chart (no dependencies): the "benefit of adaptation" figure, speedup over
 * the star against the number of fast-path links, one series per scenario, plus markers for the
 * automatic adaptation. PNG is made from the SVG with rsvg-convert or ImageMagick when present.
 *
 * @module
 */

/** One series: points (links, speedup) and the automatic run's point. */
export interface Series {
  name: string;
  points: [number, number][];
  auto?: [number, number];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

/**
 * Renders the chart.
 *
 * @example
 * ```ts
 * import { renderChart } from "./plot.ts";
 * const svg = renderChart("t", [{ name: "a", points: [[0, 1], [1, 2]] }]);
 * if (!svg.startsWith("<svg")) throw new Error();
 * ```
 */
export function renderChart(title: string, series: Series[]): string {
  const W = 720, H = 440, L = 70, R = 180, T = 50, B = 60;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.auto ? [s.auto[1]] : [])]);
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys) * 1.1;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => H - B - (v / yMax) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - R / 2}" y="28" text-anchor="middle" font-size="16">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">fast-path links added</text>`,
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${
      (T + H - B) / 2
    })">speedup over the star</text>`,
  ];
  for (let i = 0; i <= xMax; i++) {
    out.push(`<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${i}</text>`);
  }
  const step = yMax > 10 ? 2 : yMax > 4 ? 1 : 0.5;
  for (let v = 0; v <= yMax; v += step) {
    out.push(
      `<line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const path = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0])},${y(p[1])}`).join(" ");
    out.push(`<path d="${path}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const p of s.points) {
      out.push(`<circle cx="${x(p[0])}" cy="${y(p[1])}" r="4" fill="${c}"/>`);
    }
    if (s.auto) {
      const [ax, ay] = [x(s.auto[0]), y(s.auto[1])];
      out.push(
        `<rect x="${ax - 6}" y="${
          ay - 6
        }" width="12" height="12" fill="none" stroke="${c}" stroke-width="2"/>`,
      );
    }
    const ly = T + 20 + i * 40;
    out.push(
      `<line x1="${W - R + 15}" y1="${ly}" x2="${
        W - R + 40
      }" y2="${ly}" stroke="${c}" stroke-width="2"/>`,
      `<text x="${W - R + 46}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
    if (s.auto) {
      out.push(
        `<rect x="${W - R + 21}" y="${
          ly + 12
        }" width="12" height="12" fill="none" stroke="${c}" stroke-width="2"/>`,
        `<text x="${W - R + 46}" y="${ly + 22}">automatic</text>`,
      );
    }
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Converts an SVG file to PNG with whichever converter is installed; returns how, or null. */
export async function svgToPng(svgPath: string, pngPath: string): Promise<string | null> {
  for (
    const [cmd, args] of [
      ["rsvg-convert", ["-o", pngPath, svgPath]],
      ["convert", [svgPath, pngPath]],
    ] as const
  ) {
    try {
      const r = await new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" })
        .output();
      if (r.success) return cmd;
    } catch { /* not installed */ }
  }
  return null;
}
