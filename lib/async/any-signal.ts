/**
 * A signal aborted as soon as any of `signals` is (Node 18, which the image ships, lacks
 * `AbortSignal.any`). Returns the combined signal and a `dispose` that detaches the listeners.
 */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  const already = present.find((s) => s.aborted);
  if (already) {
    controller.abort(already.reason);
    return { signal: controller.signal, dispose: () => undefined };
  }
  const listeners = present.map((s) => {
    const onAbort = (): void => controller.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    return () => s.removeEventListener("abort", onAbort);
  });
  return { signal: controller.signal, dispose: () => listeners.forEach((off) => off()) };
}
