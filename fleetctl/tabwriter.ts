/**
 * A port of Go's `text/tabwriter` for the settings fleetctl uses everywhere:
 * `tabwriter.NewWriter(out, 0, 8, 1, '\t', 0)` (minwidth 0, tabwidth 8, padding 1, pad with tabs).
 * Output is byte-for-byte Go's, so scripts written against fleet's columns keep working.
 *
 * Algorithm as in Go: text is cut into lines of tab-terminated cells; a column block is a run of
 * consecutive lines that have a cell in that column; its width is the widest cell + padding, rounded
 * up to a multiple of the tab width, and cells are padded with as many tabs as that takes. The last
 * cell of a line is not part of any column. A line without any tab ends all blocks (Go flushes there).
 */

export interface TabWriterOptions {
  minWidth?: number;
  tabWidth?: number;
  padding?: number;
}

interface Cell {
  text: string;
  width: number;
}

/** Formats `text` (lines separated by `\n`, cells by `\t`) as Go's tabwriter would on Flush. */
export function formatTabbed(text: string, options: TabWriterOptions = {}): string {
  const minWidth = options.minWidth ?? 0;
  const tabWidth = options.tabWidth ?? 8;
  const padding = options.padding ?? 1;
  const rawLines = text.split("\n");
  const endsWithNewline = rawLines.length > 1 && rawLines[rawLines.length - 1] === "";
  if (endsWithNewline) rawLines.pop();
  const lines: Cell[][] = rawLines.map((l) => l.split("\t").map((t) => ({ text: t, width: runeCount(t) })));

  const out: string[] = [];
  const widths: number[] = [];
  const tabs = ["", "\t", "\t\t", "\t\t\t", "\t\t\t\t"];

  const pad = (textWidth: number, cellWidth: number): void => {
    // Padding with tabs: the cell width is rounded up to a multiple of the tab width.
    const cw = Math.ceil(cellWidth / tabWidth) * tabWidth;
    const n = Math.ceil((cw - textWidth) / tabWidth);
    out.push(tabs[n] ?? "\t".repeat(n));
  };

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const line = lines[i]!;
      const last = line.length - 1;
      for (let j = 0; j <= last; j++) {
        const c = line[j]!;
        out.push(c.text);
        if (j < widths.length && j < last) pad(c.width, widths[j]!);
      }
      if (i + 1 < lines.length || endsWithNewline) out.push("\n");
    }
  };

  const format = (line0In: number, line1: number): void => {
    let line0 = line0In;
    const column = widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= lines[t]!.length - 1) continue;
      writeLines(line0, t);
      line0 = t;
      let width = minWidth;
      for (; t < line1; t++) {
        const line = lines[t]!;
        if (column >= line.length - 1) break;
        const w = line[column]!.width + padding;
        if (w > width) width = w;
      }
      widths.push(width);
      format(line0, t);
      widths.pop();
      line0 = t;
    }
    writeLines(line0, line1);
  };

  // Go flushes (ending every column block) after each line that has no tab.
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.length === 1) {
      format(start, i + 1);
      start = i + 1;
    }
  }
  format(start, lines.length);
  return out.join("");
}

/** Width in runes (Go's utf8.RuneCount); ASCII, the common case, is just the length. */
function runeCount(text: string): number {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(text)) return text.length;
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Formats rows of cells: one line per row, cells joined by tabs, as fleetctl's listings do. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  return formatTabbed(rows.map((r) => r.join("\t")).join("\n") + "\n");
}
