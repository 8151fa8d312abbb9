/**
 * A net.Socket look-alike around any byte stream (an SSH channel), so Node's http client and keep-alive
 * agent treat it as they treat TCP:
 *
 * - The peer's EOF ends the connection (net.Socket's `allowHalfOpen: false`). An SSH channel stays
 *   half-open instead: when fleetd closes an idle keep-alive connection, sshd forwards only EOF, and the
 *   agent, which drops a pooled socket on `close` only, kept reusing it; the next request went into a
 *   channel nobody answered and waited forever.
 * - `setTimeout` really times out after idleness, so the agent expires pooled connections just before
 *   the server's announced `Keep-Alive: timeout=N`, and request timeouts fire.
 */
import { Duplex } from "node:stream";

/** Wraps `inner`; destroying the wrapper destroys `inner` (an SSH channel: EOF + close). */
export class StreamSocket extends Duplex {
  /** Idle timeout in ms (0 = none), as `net.Socket#timeout`; the agent compares it. */
  timeout = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly inner: Duplex) {
    super({ allowHalfOpen: false });
    inner.on("data", (chunk: Buffer) => {
      this.touch();
      if (!this.push(chunk)) inner.pause();
    });
    inner.on("end", () => this.push(null));
    inner.on("error", (err: Error) => this.destroy(err));
    // Closed without EOF (the SSH connection died): end reading, then drop the connection even if a
    // write is stuck (an ssh2 channel never completes writes once closed).
    inner.on("close", () => {
      this.push(null);
      setImmediate(() => this.destroy());
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.inner.destroyed || !this.inner.writable) {
      callback(new Error("the tunnel channel is closed"));
      return;
    }
    this.touch();
    this.inner.write(chunk, encoding, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.inner.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.inner.destroy();
    callback(err);
  }

  /** Emits `timeout` after `ms` without traffic (0 turns it off), like net.Socket. */
  setTimeout(ms: number, callback?: () => void): this {
    this.timeout = ms;
    if (callback) this.once("timeout", callback);
    this.touch();
    return this;
  }

  // Meaningless for a channel; the http client calls them on every socket.
  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  private touch(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.timeout > 0 && !this.destroyed) {
      // Unref'd: a pooled idle connection must not keep fleetctl alive.
      this.timer = setTimeout(() => this.emit("timeout"), this.timeout).unref();
    }
  }
}
