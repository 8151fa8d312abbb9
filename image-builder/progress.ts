/** Progress lines for each build step: what, how long, how big. Only entry points decide where they go. */

/** Formats a byte count as MiB with one decimal. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Something that prints progress lines (stderr in the CLI, a buffer in tests). */
export type ProgressSink = (line: string) => void;

/** Runs a named step and prints "step: name ... done in X s (detail)". */
export async function step<T>(sink: ProgressSink, name: string, fn: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
  const started = Date.now();
  sink(`==> ${name}`);
  const result = await fn();
  const extra = detail ? ` (${detail(result)})` : "";
  sink(`    ${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s${extra}`);
  return result;
}
