/**
 * A model of the byte reader fleet parses unit files with: Go's `bufio.Reader` (4096-byte buffer)
 * over a `strings.Reader`. It exists for one reason: fleet's line-length check looks at how many
 * bytes happen to be buffered (`Buffered() >= 2048`, then "no CR/LF in the next 2048 bytes"), so
 * whether fleet accepts a long line depends on where the buffer was last refilled. To accept and
 * refuse exactly what fleet does, we refill exactly when bufio does:
 * - `readRune` refills only when the buffer lacks a whole UTF-8 sequence;
 * - `readBytes` refills when the delimiter is not in the buffer (a full buffer is handed out and
 *   emptied first);
 * - a refill first slides the unread bytes to the front, then reads as much as fits.
 */

/** bufio's default buffer size. */
const BUFFER_SIZE = 4096;

/** Bytes needed for the whole UTF-8 sequence that starts with `lead` (1 for ASCII and bad leads). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 1;
}

export class FleetReader {
  /** Offset in `data` of the buffer's first unread byte (bufio's `r`). */
  private r = 0;
  /** Offset in `data` one past the last buffered byte (bufio's `w`). */
  private w = 0;
  private lastRuneSize = -1;

  constructor(private readonly data: Buffer) {}

  /** Bytes consumed so far (for error positions). */
  get offset(): number {
    return this.r;
  }

  /** bufio's `Buffered()`. */
  buffered(): number {
    return this.w - this.r;
  }

  /** The next `n` buffered bytes (callers only ask when at least `n` are buffered). */
  peek(n: number): Buffer {
    return this.data.subarray(this.r, this.r + n);
  }

  private atEof(): boolean {
    return this.w >= this.data.length;
  }

  /** Slides unread bytes to the front and reads as many more as fit. */
  private fill(): void {
    this.w = Math.min(this.data.length, this.r + BUFFER_SIZE);
  }

  /** The next code point as a string, or `undefined` at end of input. */
  readRune(): string | undefined {
    const need = (): number => (this.r < this.w ? sequenceLength(this.data[this.r] ?? 0) : 1);
    while (this.w - this.r < need() && !this.atEof() && this.w - this.r < BUFFER_SIZE) this.fill();
    this.lastRuneSize = -1;
    if (this.r === this.w) return undefined;
    const size = Math.min(need(), this.w - this.r);
    const rune = this.data.subarray(this.r, this.r + size).toString("utf8");
    this.r += size;
    this.lastRuneSize = size;
    return rune;
  }

  /** Steps back over the rune just read. */
  unreadRune(): void {
    if (this.lastRuneSize > 0) this.r -= this.lastRuneSize;
    this.lastRuneSize = -1;
  }

  /** Bytes up to and including `delim`; `found` false when input ended first (Go's io.EOF). */
  readBytes(delim: number): { bytes: Buffer; found: boolean } {
    const start = this.r;
    for (;;) {
      const i = this.data.subarray(this.r, this.w).indexOf(delim);
      if (i >= 0) {
        this.r += i + 1;
        return { bytes: this.data.subarray(start, this.r), found: true };
      }
      if (this.atEof()) {
        this.r = this.w;
        return { bytes: this.data.subarray(start, this.r), found: false };
      }
      // Buffer full without the delimiter: bufio hands it out and empties it before refilling.
      if (this.w - this.r >= BUFFER_SIZE) this.r = this.w;
      this.fill();
    }
  }
}
