/**
 * The operator's client of `npm run bench:scheduler --submit api|api-bulk`, in its own process (as it
 * would be on the operator's own machine): submits `bench@0..N-1.service` through the real HTTP API
 * with the real `ApiClient`, so its CPU is not taken from the 10,000 simulated machines' event loop
 * (nor theirs from it). `api`: one `PUT /units/<name>` per unit, K in flight (fleet's Go client);
 * `api-bulk`: `ApiClient.putUnits`, the `POST /units` requests our fleetctl sends.
 *
 * argv: <socket path> <api|api-bulk> <units> <concurrency> <unit text as JSON>. Prints `{"ready":true}`
 * once loaded. A line `warm <N> <prefix>` on stdin submits `<prefix>0..N-1.service` the same way (so
 * this process and the API's code path are warm before the clock starts, as the raw puts' client is)
 * and prints `{"warmed":N}`; a line `unwarm <N> <prefix>` destroys them (`DELETE /units/<name>`, K in
 * flight) and prints `{"unwarmed":N}`. A line `go` submits, then prints one JSON line
 * `{"submittedAt":[…],"cpuSeconds":…}`: for each unit, in name order, the wall-clock time (ms since the
 * epoch, sub-millisecond) its request was sent, and the CPU this process used while submitting.
 */
import { createInterface } from "node:readline";
import { ApiClient } from "../lib/api/client";
import { mapLimit } from "../lib/async/map-limit";
import { parseUnitFile } from "../lib/unit";

const now = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const [socketPath, mode, units, concurrency, textJson] = process.argv.slice(2);
  if (!socketPath || (mode !== "api" && mode !== "api-bulk") || !units || !concurrency || !textJson) {
    throw new Error("usage: submit-process.ts <socket> <api|api-bulk> <units> <concurrency> <unit text as JSON>");
  }
  const options = parseUnitFile(JSON.parse(textJson) as string);
  const names = Array.from({ length: Number(units) }, (_, i) => `bench@${i}.service`);
  const api = new ApiClient({ endpoint: `unix://${socketPath}`, requestTimeoutMs: 120_000, maxSockets: Number(concurrency) });
  const submittedAt = new Array<number>(names.length).fill(NaN);
  /** Submits `unitNames` the way `mode` says, noting each unit's send time in `sentAt`. */
  const submit = async (unitNames: readonly string[], sentAt: number[]): Promise<void> => {
    if (mode === "api-bulk") {
      sentAt.fill(now());
      await api.putUnits(unitNames.map((name) => ({ name, options, desiredState: "launched" as const })));
      return;
    }
    await mapLimit(
      unitNames.map((name, i) => [name, i] as const),
      Number(concurrency),
      async ([name, i]) => {
        sentAt[i] = now();
        await api.createUnit({ name, options, desiredState: "launched" });
      },
    );
  };
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  let line: string;
  for (;;) {
    const next = await lines.next();
    if (next.done) return;
    line = next.value;
    const warm = /^(warm|unwarm) (\d+) (\S+)$/.exec(line);
    if (!warm) break;
    const n = Number(warm[2]);
    const warmNames = Array.from({ length: n }, (_, i) => `${warm[3]}${i}.service`);
    if (warm[1] === "warm") {
      await submit(warmNames, new Array<number>(n));
      process.stdout.write(`${JSON.stringify({ warmed: n })}\n`);
    } else {
      await mapLimit(warmNames, Number(concurrency), async (name) => void (await api.destroyUnit(name)));
      process.stdout.write(`${JSON.stringify({ unwarmed: n })}\n`);
    }
  }
  if (line !== "go") throw new Error(`submit process: expected "warm <N> <prefix>", "unwarm <N> <prefix>" or "go", got ${JSON.stringify(line)}`);
  const cpuBefore = process.cpuUsage();
  await submit(names, submittedAt);
  const cpu = process.cpuUsage(cpuBefore);
  api.close();
  // A pipe is written asynchronously: exit only once the (multi-megabyte) line is out.
  await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify({ submittedAt, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`, () => resolve()));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench submit process failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
