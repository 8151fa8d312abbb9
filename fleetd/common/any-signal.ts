/**
 * A signal aborted when any of `signals` aborts. `AbortSignal.any` exists only from Node 20.3; the
 * image ships Debian's Node 18, so fleetd carries this small equivalent.
 */
export function anySignal(signals: readonly AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  const onAbort = (s: AbortSignal): void => {
    controller.abort(s.reason);
    for (const other of signals) other.removeEventListener("abort", listeners.get(other)!);
  };
  const listeners = new Map<AbortSignal, () => void>();
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    const l = (): void => onAbort(s);
    listeners.set(s, l);
    s.addEventListener("abort", l, { once: true });
  }
  return controller.signal;
}
